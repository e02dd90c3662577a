"""A registry written by an earlier release keeps opening, verifying and reading the same
(tests/samples/registry-v14: made by the release before per-adapter tracks; its
``make_registry_v14.py`` says how). Each test works on its own copy: opening migrates."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from loraledger.policies.deployments import retire, rollback
from loraledger.registry import Registry
from loraledger.registry.keys import KeyStore
from typer.testing import CliRunner

from loraledger.cli import app
from tests.policies.helpers import deploy

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "registry-v14"
EXPECTED = json.loads((SAMPLE / "expected.json").read_text())


@pytest.fixture
def old(tmp_path: Path) -> Path:
    copy = Path(shutil.copytree(SAMPLE, tmp_path / "old"))
    (copy / "registry" / "tmp").mkdir(exist_ok=True)  # (git keeps no empty folder)
    for key in (copy / "keys").iterdir():  # (nor a file's mode: a checkout makes them 0644)
        key.chmod(0o600)
    return copy


def opened(site: Path) -> Registry:
    return Registry.open(site / "registry", keys=KeyStore(site / "keys"))


def test_an_old_registry_opens_verifies_and_reads_as_that_release_did(old: Path) -> None:
    reg = opened(old)
    assert reg.verify_records()["deployments"] == 5
    for env, expected in EXPECTED.items():
        history = reg.deployments.history(env)
        assert [
            {"seq": d.seq, "adapter": d.adapter, "action": d.action.value,
             "format_version": d.format_version, "at": d.created_at.isoformat()}
            for d in history
        ] == expected["history"]  # fmt: skip
        assert all(d.track is None for d in history)  # whole-environment records
        for moment, adapter in expected["ran_at"].items():
            ran = reg.deployments.running(env, datetime.fromisoformat(moment))
            assert [d.adapter for d in ran.values()] == [adapter], moment
    # fraud-triage replaced bank-support in staging, and the rollback put it back: one runs
    assert {n: d.adapter for n, d in reg.deployments.running("staging").items()} == {
        "bank-support": "bank-support@v2"
    }
    env = {"LORALEDGER_REGISTRY": str(old / "registry"), "LORALEDGER_KEYS_DIR": str(old / "keys")}
    result = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output
    status = CliRunner().invoke(app, ["status", "--json"], env=env)
    assert status.exit_code == 0, status.output
    assert [(r["environment"], r["adapter"]) for r in json.loads(status.stdout)] == [
        ("production", "bank-support@v1"),
        ("staging", "bank-support@v2"),
    ]


def test_tracks_continue_an_old_environment(old: Path) -> None:
    """New records follow the old ones in the same chain: fraud-triage joins staging
    beside bank-support; rolling fraud-triage back reaches past the old records."""
    reg = opened(old)
    policy = old / "policy.yaml"
    policy.write_text("version: 1\nenvironments:\n  staging: {}\n  production: {}\n")
    from tests.policies.helpers import use_policy

    use_policy(reg, policy, reason="sample")  # (as alice, the sample's admin)
    deploy(reg, "staging", "fraud-triage@v1")
    assert {n: d.adapter for n, d in reg.deployments.running("staging").items()} == {
        "bank-support": "bank-support@v2",
        "fraud-triage": "fraud-triage@v1",
    }
    retire(reg, "bank-support", "staging", reason="moved to a vendor", actor="rita")
    assert list(reg.deployments.running("staging")) == ["fraud-triage"]
    back = rollback(reg, "staging", name="bank-support", reason="vendor failed", actor="rita")
    assert back.adapter == "bank-support@v2" and back.track == "bank-support"
    assert reg.verify_records()["deployments"] == 8
    assert opened(old).deployments.history("staging")[-1] == back  # read again, fresh
