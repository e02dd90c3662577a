"""How ``tests/samples/registry-v14`` was made: a DuckDB registry written by the release
before per-adapter release tracks (schema 14, deployment records format 2, at commit
dee1e98), kept so every later release is tested against what that one wrote
(tests/registry/test_old_registries.py). Not re-run: later releases write a newer format.

It holds two adapters deployed as that release did, each deployment replacing whatever
the environment ran (whole-environment records): staging ran bank-support@v1, @v2, then
fraud-triage@v1 (replacing bank-support), then was rolled back to bank-support@v2;
production runs bank-support@v1. ``expected.json`` is what that release answered about
them: each environment's history and, at each deployment's time, what it ran.

    python tests/samples/make_registry_v14.py tests/samples/registry-v14
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from loraledger.policies.deployments import rollback
from loraledger.registry import Registry, Role
from loraledger.registry.keys import KeyStore
from loraledger.registry.synthetic import write_lora_adapter

from tests.policies.helpers import deploy


def main(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    keys = KeyStore(out / "keys")
    reg = Registry.init(out / "registry", keys=keys)
    reg.identities.create("alice", Role.ADMIN, actor=None)
    reg.identities.create("eve", Role.ENGINEER, actor="alice")
    reg.identities.create("rita", Role.REVIEWER, actor="alice")
    scratch = out / "scratch"
    for seed, name in enumerate(["bank-support", "bank-support", "fraud-triage"]):
        adapter = write_lora_adapter(scratch / str(seed), hidden=32, layers=2, r=4, seed=seed)
        reg.adapters.register(adapter, name, actor="eve")
    shutil.rmtree(scratch)
    for env, ref in [
        ("staging", "bank-support@v1"),
        ("staging", "bank-support@v2"),
        ("production", "bank-support@v1"),
        ("staging", "fraud-triage@v1"),
    ]:
        deploy(reg, env, ref)
        time.sleep(1.1)  # trace --at reads whole seconds apart
    rollback(reg, "staging", reason="fraud-triage is not ready", actor="rita")
    expected: dict[str, object] = {}
    for env in reg.deployments.environments():
        history = reg.deployments.history(env)
        expected[env] = {
            "history": [
                {
                    "seq": d.seq,
                    "adapter": d.adapter,
                    "action": d.action.value,
                    "format_version": d.format_version,
                    "at": d.created_at.isoformat(),
                }
                for d in history
            ],
            # as that release's trace_environment chose (its trace of the version itself
            # needs the base, which this sample does not hold)
            "ran_at": {
                d.created_at.isoformat(): [e for e in history if e.created_at <= d.created_at][
                    -1
                ].adapter
                for d in history
            },
        }
    (out / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
