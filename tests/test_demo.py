"""The README's main job runs start to finish and shows each refusal it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_runs_end_to_end() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/demo.py"], capture_output=True, text=True, cwd=REPO, timeout=1500
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Registered northwind-support@v2" in out
    assert "A: Northwind Bank charges a 12 dollar overdraft fee" in out
    assert "on northwind-domain (digest " in out and "alpha 0.05): improvement" in out
    assert "Suite northwind-policy (policy)" in out
    # release: the evidence passes and only an approval is missing; the author and the
    # auditor may not give it
    assert "Gate staging for northwind-support@v1 (digest " in out and "0 of 1 valid" in out
    assert "identity 'eve' has role engineer; this needs admin or reviewer" in out
    assert "identity 'otto' has role auditor" in out
    assert "error: refused: alice registered partner@v1; separation of duties" in out
    assert re.search(r"Gate production for northwind-support@v1 .*: FAILED", out)
    assert "production now runs northwind-support@v1" in out
    assert "production now runs northwind-support@v2" in out
    assert "production rolled back to northwind-support@v1" in out
    assert "Every link verified." in out
    assert "Every check passed." in out and "The pack does NOT verify." in out
    assert "Verification succeeded" in out  # the official model_signing CLI
    assert "error: files do not match the signature (changed: adapter_model.safetensors)" in out
    assert re.search(r"error: audit chain broken at event #\d+: its content", out)
    assert "error: audit log truncated" in out
