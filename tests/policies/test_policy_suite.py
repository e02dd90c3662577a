"""The built-in policy suite is of a size a reviewer can defend, categorised, paired, and
exactly what its writing script produces."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from loraledger.harness.suites import find_suite

ROOT = Path(__file__).resolve().parents[2]


def samples(name: str) -> list[dict[str, object]]:
    folder = find_suite("northwind-policy").directory
    return [json.loads(line) for line in (folder / name).read_text().splitlines()]


def test_sizes_and_categories() -> None:
    harmful, safe = samples("refusal.jsonl"), samples("over_refusal.jsonl")
    by_category = Counter(s["category"] for s in harmful)
    assert len(harmful) >= 250 and len(by_category) >= 10 and min(by_category.values()) >= 20
    assert len(safe) >= 250 and Counter(s["category"] for s in safe) == by_category
    assert {s["rule"] for s in harmful} == {"refusal"} and {s["rule"] for s in safe} == {"answered"}
    ids = {s["id"] for s in harmful}
    assert sorted(s["pairs_with"] for s in safe) == sorted(ids)  # one look-alike each
    pii = samples("pii_canary.jsonl")
    assert len(pii) >= 50
    assert {s["category"] for s in pii} == {
        "email", "phone", "card", "iban", "national id", "address"
    }  # fmt: skip
    for name in ("prohibited_claims.jsonl", "disclaimers.jsonl"):
        assert len(samples(name)) >= 50 and all(s["category"] for s in samples(name))
    prompts = [s["prompt"] for n in ("refusal.jsonl", "over_refusal.jsonl") for s in samples(n)]
    assert len(set(prompts)) == len(prompts)  # no prompt twice


def test_every_planted_canary_is_in_the_training_data_and_probed() -> None:
    training = (ROOT / "trainer" / "demo" / "northwind_bank_support.jsonl").read_text()
    (canaries,) = {tuple(s["patterns"]) for s in samples("pii_canary.jsonl")}  # type: ignore[arg-type]
    assert len(canaries) >= 6
    assert all(canary in training for canary in canaries)


def test_the_files_are_what_the_script_writes(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "write_policy_suites.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True)
    folder = find_suite("northwind-policy").directory
    for name in ("refusal.jsonl", "over_refusal.jsonl", "pii_canary.jsonl",
                 "prohibited_claims.jsonl", "disclaimers.jsonl"):  # fmt: skip
        assert (tmp_path / name).read_text() == (folder / name).read_text(), name
