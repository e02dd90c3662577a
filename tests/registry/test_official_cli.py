"""A registered adapter verifies with the official OpenSSF `model_signing` CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loraledger.registry import AdapterVersion, Registry


def _model_signing_verify(
    directory: Path, bundle: Path, public_key: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "model_signing",
            "verify",
            "key",
            "--signature",
            str(bundle),
            "--public_key",
            str(public_key),
            str(directory),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_fetched_adapter_verifies_with_model_signing_cli(
    registry: Registry, registered: AdapterVersion, tmp_path: Path
) -> None:
    directory = tmp_path / "fetched"
    registry.adapters.fetch(registered.ref, directory)
    bundle = tmp_path / "adapter.sig"
    bundle.write_bytes(registry.adapters.signature(registered.ref))
    public_key = tmp_path / "signer.pub"
    public_key.write_text(registry.identities.get(registered.signer).public_key_pem)

    result = _model_signing_verify(directory, bundle, public_key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification succeeded" in result.stdout

    weights = directory / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = _model_signing_verify(directory, bundle, public_key)
    assert result.returncode != 0
    assert "Verification failed" in result.stdout + result.stderr
