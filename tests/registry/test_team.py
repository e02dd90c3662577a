"""A team on one PostgreSQL registry: eight people on eight machines (each process its own
HOME, its own key, its own first-use trust), registering, recording evaluations,
approving and promoting at once. Nothing is lost, each contested promotion has exactly
one winner, versions are numbered without gaps and the chain verifies."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loraledger.registry import Registry, Role
from loraledger.registry.keys import KeyStore
from loraledger.registry.synthetic import write_lora_adapter

from tests.conftest import ADMIN, ENGINEER
from tests.policies.helpers import use_policy
from tests.registry.test_base_models import base_files, register

REPO = Path(__file__).resolve().parents[2]
ENGINEERS = [f"eng{n}" for n in range(4)]
REVIEWERS = [f"rev{n}" for n in range(4)]
ROUNDS = 3
POLICY = """\
version: 1
environments:
  race:
    provenance: {signed: true}
    approvals: {count: 1, role: reviewer}
"""

WORKER = """
import sys, time
from pathlib import Path
from loraledger.errors import Conflict
from loraledger.registry import Registry
from loraledger.registry.synthetic import write_lora_adapter
from tests.registry.test_evaluations import a_run
url, name, role, start, target, policy, rounds = sys.argv[1:8]
registry = Registry.open(url)  # this machine's own key directory, under its own HOME
while time.time() < float(start):
    time.sleep(0.005)
if role == "engineer":
    for i in range(int(rounds)):
        adapter = write_lora_adapter(Path.home() / f"adapter{i}", base_model="tiny@v1",
                                     hidden=16, layers=1, seed=hash((name, i)) % 10**6)
        version = registry.adapters.register(adapter, "shared", actor=name)
        run = registry.evaluations.record(a_run(registry, version.ref), actor=name)
        print("REGISTERED", version.ref, run.id, flush=True)
else:
    from loraledger.policies.approvals import decide
    from loraledger.policies.deployments import promote
    decide(registry, target, "race", "approve", comment=name, actor=name, policy=Path(policy))
    print("APPROVED", flush=True)
    try:
        deployment = promote(registry, target, "race", actor=name, policy=Path(policy))
        print("WON", deployment.seq, flush=True)
    except Conflict as error:
        print("LOST", error, flush=True)
"""


@pytest.fixture(scope="module", params=["postgresql", "postgresql+s3"])
def backend(request: pytest.FixtureRequest) -> str:
    """The team's records in PostgreSQL; its store a shared directory, or S3 (each machine
    then keeps its own cache of the objects it read, under its own HOME)."""
    return str(request.param)


def test_eight_machines_at_once_lose_nothing_and_one_promotion_wins(
    registry: Registry, tmp_path: Path
) -> None:
    register(registry, base_files(tmp_path / "base"))
    target = registry.adapters.register(
        write_lora_adapter(tmp_path / "target", base_model="tiny@v1", hidden=16, layers=1),
        "target",
        actor=ENGINEER,
    ).ref
    homes: dict[str, Path] = {}
    for name in ENGINEERS + REVIEWERS:
        home = tmp_path / "machines" / name
        key = KeyStore(home / ".loraledger" / "keys").create(name)  # made on that machine
        role = Role.ENGINEER if name in ENGINEERS else Role.REVIEWER
        registry.identities.create(name, role, actor=ADMIN, public_key_pem=key.public_key_pem)
        homes[name] = home
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    use_policy(registry, policy)
    start = time.time() + 4  # every process imported and connected before it
    machines = {
        name: _machine(registry, name, home, start, target, policy) for name, home in homes.items()
    }
    results = {name: p.communicate(timeout=600) for name, p in machines.items()}
    for name, (out, err) in results.items():
        assert machines[name].returncode == 0, (name, out, err)
    lines = [line for out, _ in results.values() for line in out.splitlines()]
    registered = [line.split()[1] for line in lines if line.startswith("REGISTERED")]
    assert sorted(registered, key=lambda r: int(r.split("@v")[1])) == [
        f"shared@v{n}" for n in range(1, len(ENGINEERS) * ROUNDS + 1)
    ]
    verdicts = sorted(line.split()[0] for line in lines if line.split()[0] in ("WON", "LOST"))
    assert verdicts == ["LOST"] * (len(REVIEWERS) - 1) + ["WON"], lines
    # what the registry holds is what they said, and all of it verifies
    assert [d.adapter for d in registry.deployments.history("race")] == [target]
    assert len(registry.approvals.list(target)) == len(REVIEWERS)
    runs = {line.split()[2] for line in lines if line.startswith("REGISTERED")}
    assert {r.id for r in registry.evaluations.list()} >= runs
    for ref in registered:
        assert registry.adapters.verify(ref).signer in ENGINEERS
    registry.verify_audit()
    counts = registry.verify_records()
    assert counts["adapter_versions"] == len(registered) + 1
    assert counts["eval_runs"] == len(runs) and counts["approvals"] == len(REVIEWERS)


def _machine(
    registry: Registry, name: str, home: Path, start: float, target: str, policy: Path
) -> subprocess.Popen[str]:
    role = "engineer" if name in ENGINEERS else "reviewer"
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(registry.address), name, role, str(start), target,
         str(policy), str(ROUNDS)],
        env={**_clean_env(), "HOME": str(home)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip


def _clean_env() -> dict[str, str]:
    """The test process's environment without its LoRA Ledger settings (each machine
    has its own defaults under its HOME)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")}
