"""QLoRA training with provenance (loraledger.trainer). Built in the trainer issue (#3)."""
