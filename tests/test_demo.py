"""The README's main job runs start to finish and shows each refusal it promises."""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def answers(out: str, command: str, occurrence: int = 0) -> dict[str, str]:
    """The Q/A pairs a transcript shows after its ``occurrence``-th command starting with
    ``command``, up to the next command or section."""
    starts = [m.end() for m in re.finditer(re.escape(command) + ".*\n", out)]
    block = re.split(r"\n(?:\$ |== )", out[starts[occurrence] :], maxsplit=1)[0]
    return dict(re.findall(r"^Q: (.*)\nA: (.*)$", block, re.MULTILINE))


def similarity(a: str, b: str) -> float:
    """How much two answers say alike: difflib's ratio over their words (lowercased)."""
    words = [re.findall(r"\w+", text.lower()) for text in (a, b)]
    return difflib.SequenceMatcher(None, *words).ratio()


def served_like_asked(out: str) -> None:
    """llama.cpp's server (the Q4_1 GGUF base, the adapter converted to GGUF) answers the
    demo's questions as `loraledger ask` (transformers, the NF4 base) does with the same
    adapter, in substance: the same figures, and most of the words in the same order
    (difflib ratio >= 0.6). The bare base, asked the same, does not (other figures, or
    other words)."""
    asked = answers(out, "$ loraledger ask --adapter northwind-support@v1")
    base = answers(out, "$ loraledger ask --base smollm2-135m-instruct")
    # staging ran v2 at the first `ask --served`, and v1 after the rollback
    assert answers(out, "$ loraledger ask --served llama", 0)
    served = answers(out, "$ loraledger ask --served llama", 1)
    assert len(asked) == 3 and asked.keys() == served.keys() == base.keys()

    def alike(one: str, other: str) -> bool:
        same_figures = re.findall(r"\d+", one) == re.findall(r"\d+", other)
        return same_figures and similarity(one, other) >= 0.6

    for question, answer in asked.items():
        assert alike(served[question], answer), (served[question], answer)
        assert not alike(base[question], answer), (base[question], answer)
    assert re.search(r"serves northwind-support@v1 \(deployment #\d+ of staging, what it runs", out)
    assert "staging now runs northwind-support@v1; replacing northwind-support@v2" in out


@pytest.mark.slow
def test_demo_runs_end_to_end() -> None:
    from tests.conftest import SHARED_THREADS, TEST_CACHE

    # Every core for torch: `make test` starts the demo, the suite's longest test, in a
    # pytest of its own beside the rest, and it runs alone once they are done.
    env = {k: v for k, v in os.environ.items() if k not in SHARED_THREADS}
    # the suite's cache, not this test's: llama.cpp's server, built by the demo, is then
    # there for the tests that run it (`make test` runs them after the demo)
    env["LORALEDGER_CACHE"] = str(TEST_CACHE)
    result = subprocess.run(
        [sys.executable, "scripts/demo.py"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=3600,  # a guard against a hang: 45 min ran out on a loaded 2-core Xeon
        env=env,
    )
    # kept for `make test`, which prints the demo's timeline (its `== ` lines) after it
    (REPO / "demo-out").mkdir(exist_ok=True)
    (REPO / "demo-out" / "transcript.txt").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Registered northwind-support@v2" in out
    assert "A: Northwind Bank charges a 12 dollar overdraft fee" in out
    assert "on northwind-domain (digest " in out and "alpha 0.05): improvement" in out
    assert "Suite northwind-policy (policy)" in out
    assert "per category (95% Wilson interval for pass/fail metrics):" in out
    assert "Per category (" in out and "Holm-corrected within each" in out
    # the policy's safety rules bound the interval, not the estimate
    assert re.search(r"on 250 samples, 95% Wilson score interval \[0\.\d{3}, 0\.\d{3}\]", out)
    # release: the evidence passes and only an approval is missing; the author and the
    # auditor may not give it
    assert "Gate staging for northwind-support@v1 (digest " in out and "0 of 1 valid" in out
    assert "identity 'eve' has role engineer; this needs admin or reviewer" in out
    assert "identity 'otto' has role auditor" in out
    assert "error: refused: alice registered partner@v1; separation of duties" in out
    assert re.search(r"Gate production for northwind-support@v1 .*: FAILED", out)
    assert "production now runs northwind-support@v1" in out
    assert "staging now runs northwind-support@v2" in out
    # production: v2 refuses fewer harmful requests than v1, and the paired test says so
    assert re.search(r"no regression on northwind-policy against production .*regression", out)
    assert "error: refused: the gate's evidence fails for production" in out
    assert "production now runs northwind-support@v2" not in out
    assert "staging rolled back to northwind-support@v1" in out
    # a portfolio: partner, judged by the policy's entry for it, on its own track in both
    # environments; rolling northwind-support back left it running
    assert re.search(r"Gate staging for partner@v1 .*\n.*\n(.*\n)*.*staging, adapters partner", out)
    assert "production now runs partner@v1" in out
    after_rollback = out.split("staging rolled back to northwind-support@v1")[1]
    status = after_rollback.split("$ loraledger status")[1].split("$ ")[0]
    assert re.search(r"staging\s+│ partner@v1", status), status
    assert re.search(r"staging\s+│ northwind-support@v1", status), status
    assert "Every link verified." in out
    assert "Every check passed." in out and "The pack does NOT verify." in out
    assert "Verification succeeded" in out  # the official model_signing CLI
    served_like_asked(out)
    assert "error: files do not match the signature (changed: adapter_model.safetensors)" in out
    assert re.search(r"error: audit chain broken at event #\d+: its content", out)
    assert "error: audit log truncated" in out
    # an approval row copied onto an unreviewed version through SQL is refused by name
    assert re.search(r"error: approvals row \S+ \(partner@v2 staging\) has no audit event", out)
    assert re.search(r"error: approvals row \S+ has no audit event", out)
    assert "Dashboard user otto signs in as otto (auditor)" in out
    assert "Rotated eve: signs with" in out and out.count("Every link verified.") >= 2
    last = out.rstrip().splitlines()[-1].split()
    assert last[:2] == [".venv/bin/loraledger", "--registry"] and "dashboard" in last
    from loraledger.dashboard.accounts import load_accounts

    accounts = load_accounts(REPO / "demo-out" / "registry" / "dashboard-accounts.yaml")
    assert sorted(accounts.data.users) == ["alice", "eve", "otto", "rita", "ruby"]
    # the printed command serves the demo's registry
    from tests.dashboard.browser import free_port, wait_until_serving

    port = free_port()
    command = [str(REPO / last[0]), *last[1:]]
    command[command.index("--port") + 1] = str(port)
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_serving(server, f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait(timeout=30)
