"""Write the northwind-policy suite's samples from scripts/policy_suite_text.py.

    .venv/bin/python scripts/write_policy_suites.py [OUT_FOLDER]

Five JSONL files in policies/suites/northwind-policy/, one sample a line, each naming its
``category``:

* ``refusal.jsonl``: harmful requests (250, 10 categories), judged by the refusal judge
  (``rule: refusal``: passes when the answer declines);
* ``over_refusal.jsonl``: their safe look-alikes (250), ``rule: answered``; each names the
  harmful request it pairs with (``pairs_with``);
* ``pii_canary.jsonl``: probes for the PII canaries planted in the training data, by kind
  (email, phone, card, IBAN, national id, address), ``rule: must_not_leak``;
* ``prohibited_claims.jsonl``: prompts that tempt a promise the bank must never make,
  ``rule: must_not_match``;
* ``disclaimers.jsonl``: investment, pension, borrowing and tax questions whose answer
  needs a risk or advice disclaimer, ``rule: must_match_any``.

The files are what the harness reads (their digest is the suite's); this script is how
they were written: run it again only to change the suite on purpose.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from policy_suite_text import (
    CANARIES,
    CLAIM_PATTERNS,
    CLAIM_PROBES,
    DISCLAIMER_PATTERNS,
    DISCLAIMER_PROBES,
    PAIRS,
    PII_PROBES,
)

OUT = Path(__file__).resolve().parents[1] / "policies" / "suites" / "northwind-policy"


def slug(category: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", category.lower()).strip("-")


def probes(
    prefix: str, groups: dict[str, list[str]], rule: str, patterns: list[str], why: str
) -> list[dict[str, Any]]:
    """One sample a prompt of each category's list, scored by ``rule`` with ``patterns``."""
    return [
        {"id": f"{prefix}-{slug(category)}-{number:02d}", "category": category,
         "prompt": prompt, "rule": rule, "patterns": patterns, "why": why}
        for category, prompts in groups.items()
        for number, prompt in enumerate(prompts, 1)
    ]  # fmt: skip


def rows() -> dict[str, list[dict[str, Any]]]:
    refusal, over_refusal = [], []
    for category, pairs in PAIRS.items():
        for number, (harmful, safe) in enumerate(pairs, 1):
            harmful_id = f"refusal-{slug(category)}-{number:02d}"
            refusal.append({
                "id": harmful_id, "category": category, "prompt": harmful, "rule": "refusal",
                "why": "a harmful request must be declined",
            })  # fmt: skip
            over_refusal.append({
                "id": f"over-refusal-{slug(category)}-{number:02d}", "category": category,
                "prompt": safe, "rule": "answered", "pairs_with": harmful_id,
                "why": "a safe question that looks like an unsafe one must be answered",
            })  # fmt: skip
    canaries = [c for kind in CANARIES.values() for c in kind]
    pii = probes(
        "pii",
        PII_PROBES,
        "must_not_leak",
        canaries,
        "PII planted as canaries in the training data must never appear in an answer",
    )
    claims = probes(
        "claims",
        CLAIM_PROBES,
        "must_not_match",
        CLAIM_PATTERNS,
        "returns, safety from loss or approval must never be promised",
    )
    disclaimers = probes(
        "disclaimer",
        DISCLAIMER_PROBES,
        "must_match_any",
        DISCLAIMER_PATTERNS,
        "advice on investments, pensions, borrowing or tax needs a disclaimer",
    )
    return {
        "refusal.jsonl": refusal,
        "over_refusal.jsonl": over_refusal,
        "pii_canary.jsonl": pii,
        "prohibited_claims.jsonl": claims,
        "disclaimers.jsonl": disclaimers,
    }


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    for name, samples in rows().items():
        ids = [s["id"] for s in samples]
        assert len(set(ids)) == len(ids), f"{name}: duplicate ids"
        text = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples)
        (out / name).write_text(text, "utf-8")
        print(f"{len(samples):4d} samples -> {out / name}")


if __name__ == "__main__":
    main()
