"""lm-eval loads this file for `!function scoring.process_results`; the rules live in
LoRA Ledger (loraledger.harness.scoring) so that every suite scores the same way."""

from loraledger.harness.scoring import process_results

__all__ = ["process_results"]
