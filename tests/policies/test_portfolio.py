"""A portfolio: an environment runs many adapters, one track per adapter name, each
promoted, rolled back and retired on its own (issue #37), on both backends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from loraledger.policies.deployments import promote, retire, rollback
from loraledger.policies.trace import trace_environment, trace_tracks
from loraledger.registry import Registry

from loraledger.errors import NothingDeployed, PermissionDenied, UsageError
from tests.conftest import ENGINEER, REVIEWER
from tests.harness.conftest import PLAIN, WILD
from tests.policies.conftest import SECOND, events
from tests.policies.helpers import use_policy

SIGNED_ONLY = "version: 1\nenvironments:\n  {env}:\n    provenance: {{signed: true}}\n"


def running(reg: Registry, env: str) -> dict[str, str]:
    return {name: d.adapter for name, d in reg.deployments.running(env).items()}


def test_each_adapter_is_released_rolled_back_and_retired_on_its_own(
    reg: Registry, tmp_path: Path
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(SIGNED_ONLY.format(env="shelf"))
    use_policy(reg, policy)
    promote(reg, PLAIN[0], "shelf", actor=REVIEWER)
    promote(reg, WILD[0], "shelf", actor=REVIEWER)  # a second name: beside the first
    assert running(reg, "shelf") == {"faq-bot": PLAIN[0], "wild": WILD[0]}
    promote(reg, PLAIN[1], "shelf", actor=REVIEWER)  # only faq-bot's track moves
    promote(reg, WILD[1], "shelf", actor=REVIEWER)
    assert running(reg, "shelf") == {"faq-bot": PLAIN[1], "wild": WILD[1]}

    back = rollback(reg, "shelf", name="faq-bot", reason="v2 answers worse", actor=SECOND)
    assert (back.adapter, back.track, back.action) == (PLAIN[0], "faq-bot", "rollback")
    assert running(reg, "shelf") == {"faq-bot": PLAIN[0], "wild": WILD[1]}
    with pytest.raises(UsageError, match="has run 2 adapters .*name the one to roll back"):
        rollback(reg, "shelf", reason="which?", actor=SECOND)
    with pytest.raises(UsageError, match="--to wild@v1 is not a version of faq-bot"):
        rollback(reg, "shelf", name="faq-bot", to=WILD[0], reason="x", actor=SECOND)
    assert rollback(reg, "shelf", reason="wild v2 leaks", actor=SECOND, to=WILD[0]).track == "wild"

    with pytest.raises(PermissionDenied):
        retire(reg, "wild", "shelf", reason="unused", actor=ENGINEER)
    with pytest.raises(UsageError, match="needs a reason"):
        retire(reg, "wild", "shelf", reason=" ", actor=REVIEWER)
    refused = len(events(reg, "deploy.refused"))
    with pytest.raises(NothingDeployed, match="shelf runs no version of faq-nf4"):
        retire(reg, "faq-nf4", "shelf", reason="never ran", actor=REVIEWER)
    assert len(events(reg, "deploy.refused")) == refused + 1
    out = retire(reg, "wild", "shelf", reason="the wild experiment ended", actor=REVIEWER)
    assert (out.action, out.adapter, out.policy_sha256) == ("retire", WILD[0], out.policy_sha256)
    assert out.policy_sha256 == reg.policies.in_force().sha256  # type: ignore[union-attr]
    assert running(reg, "shelf") == {"faq-bot": PLAIN[0]}
    # a retired name comes back in one step: the version it ran last
    assert rollback(reg, "shelf", name="wild", reason="needed", actor=SECOND).adapter == WILD[0]
    assert running(reg, "shelf") == {"faq-bot": PLAIN[0], "wild": WILD[0]}

    # readers: per track, or refused without a name where several run
    with pytest.raises(UsageError, match=r"shelf runs 2 adapters \(faq-bot, wild\)"):
        reg.deployments.current("shelf")
    assert reg.deployments.current("shelf", "wild").adapter == WILD[0]  # type: ignore[union-attr]
    assert reg.deployments.current("shelf", "faq-nf4") is None
    assert [t.deployment.adapter for t in trace_tracks(reg, "shelf")] == [PLAIN[0], WILD[0]]  # type: ignore[union-attr]
    assert trace_environment(reg, "shelf", name="wild").deployment.adapter == WILD[0]  # type: ignore[union-attr]
    with pytest.raises(UsageError, match="name the one to trace"):
        trace_environment(reg, "shelf")
    assert [(t.adapter, t.signature_problem) for t in reg.deployments.tracks("shelf")] == [
        (PLAIN[0], None), (WILD[0], None)
    ]  # fmt: skip
    assert [d.seq for d in reg.deployments.history("shelf", "wild")] == [2, 4, 6, 7, 8]
    assert reg.verify_records()["deployments"] >= 8


def test_what_ran_at_a_moment_is_read_per_track(reg: Registry, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(SIGNED_ONLY.format(env="moment"))
    use_policy(reg, policy)
    first = promote(reg, PLAIN[0], "moment", actor=REVIEWER)
    second = promote(reg, WILD[0], "moment", actor=REVIEWER)
    retire(reg, "faq-bot", "moment", reason="done", actor=REVIEWER)
    at = reg.deployments.running
    assert {n: d.id for n, d in at("moment", first.created_at).items()} == {"faq-bot": first.id}
    assert set(at("moment", second.created_at)) == {"faq-bot", "wild"}
    assert set(at("moment")) == {"wild"}
    with pytest.raises(NothingDeployed, match="moment ran no version of faq-bot now"):
        trace_tracks(reg, "moment", names=["faq-bot"])


SCRIPT = """\
import sys
from pathlib import Path
from loraledger.errors import Conflict
from loraledger.policies.deployments import promote
from loraledger.registry import Registry
from loraledger.registry.keys import KeyStore
reg = Registry.open(sys.argv[1], keys=KeyStore(Path(sys.argv[2])))
try:
    d = promote(reg, sys.argv[3], sys.argv[4], actor=sys.argv[5])
    print('WON', d.adapter)
except Conflict as error:
    print('LOST', error)
"""


def test_two_people_promoting_two_names_at_once_both_land(reg: Registry, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(SIGNED_ONLY.format(env="race3"))
    use_policy(reg, policy)
    address = str(reg.address)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, address, str(reg.keys.directory), ref, "race3", who],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for ref, who in ((PLAIN[0], REVIEWER), (WILD[0], SECOND))
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    lines = sorted(out.strip().splitlines()[-1] for out, _ in outputs)
    assert lines == [f"WON {PLAIN[0]}", f"WON {WILD[0]}"], outputs
    assert running(reg, "race3") == {"faq-bot": PLAIN[0], "wild": WILD[0]}
    assert sorted(d.seq for d in reg.deployments.history("race3")) == [1, 2]


TIERED = """\
version: 1
environments:
  tiers:
    provenance: {signed: true}
    approvals: {count: 1, role: reviewer}
    adapters:
      wild*: {approvals: {count: 2, role: reviewer}}
"""


def test_an_adapter_override_judges_its_versions_and_says_so(reg: Registry, tmp_path: Path) -> None:
    from loraledger.policies.approvals import decide
    from loraledger.policies.gates import check_gate

    from loraledger.errors import GateRefused

    policy = tmp_path / "p.yaml"
    policy.write_text(TIERED)
    use_policy(reg, policy)
    faq = check_gate(reg, PLAIN[0], "tiers", actor=REVIEWER)
    wild = check_gate(reg, WILD[0], "tiers", actor=REVIEWER)
    assert faq.format_version == wild.format_version == 2
    sources = {r.kind: r.source for r in wild.rules}
    assert sources["approvals"] == "environments.tiers.adapters.wild*"
    assert sources["provenance"] == "environments.tiers"
    assert {r.source for r in faq.rules} == {"environments.tiers"}
    assert reg.gate_checks.get(wild.id) == wild  # recorded as judged, sources and all
    decide(reg, PLAIN[0], "tiers", "approve", comment="ok", actor=REVIEWER)
    decide(reg, WILD[0], "tiers", "approve", comment="ok", actor=REVIEWER)
    promote(reg, PLAIN[0], "tiers", actor=SECOND)  # one approval is faq-bot's rule
    with pytest.raises(GateRefused, match=r"1 of 2 valid approvals \(rita\)"):
        promote(reg, WILD[0], "tiers", actor=SECOND)
    decide(reg, WILD[0], "tiers", "approve", comment="ok too", actor=SECOND)
    promote(reg, WILD[0], "tiers", actor=REVIEWER)
    assert running(reg, "tiers") == {"faq-bot": PLAIN[0], "wild": WILD[0]}
