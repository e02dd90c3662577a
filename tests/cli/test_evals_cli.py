"""`loraledger eval`, `compare`, `suites` and `evals` as a user sees them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from loraledger.registry import Registry
from typer.testing import Result

from tests.cli.conftest import Cli
from tests.conftest import ADMIN, AUDITOR, ENGINEER, REVIEWER
from tests.harness.conftest import PLAIN, eval_registry  # noqa: F401  (fixture)


class Ledger(Cli):
    """The CLI on an evaluation registry, as its engineer unless told otherwise."""

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry.address, registry.keys.directory)

    def __call__(
        self, *args: str, code: int = 0, actor: str | None = ENGINEER, stdin: str | None = None
    ) -> Result:
        return super().__call__(*args, code=code, actor=actor, stdin=stdin)


@pytest.fixture
def ledger(eval_registry: Registry) -> Ledger:
    return Ledger(eval_registry)


def test_eval_compare_and_read_back(ledger: Ledger) -> None:
    out = ledger("eval", *PLAIN, "--suite", "sanity", "--limit", "3").stdout
    assert "Suite sanity (benchmark), digest " in out
    assert out.count("sanity_mc") == 4 and "acc_norm" in out  # 2 subjects x 2 metrics
    compared = ledger("compare", PLAIN[1], PLAIN[0], "--suite", "sanity", actor=REVIEWER).stdout
    first = compared.splitlines()[0]
    assert first.startswith(f"adapter:{PLAIN[1]} vs adapter:{PLAIN[0]} on sanity (digest ")
    verdict = first.rsplit(": ", 1)[1]
    assert verdict in ("improvement", "regression", "no significant change")
    # the first 3 samples: 2 on geography, 1 on arithmetic; 2 metrics each
    assert "Per category (4 categories in 2 task metrics, Holm-corrected within each)" in compared
    listed = ledger(
        "compare", PLAIN[1], PLAIN[0], "--suite", "sanity", "--fail-on-regression", "--categories",
        code=1 if verdict == "regression" else 0,
    ).stdout  # fmt: skip
    assert "p (Holm)" in listed and "geography" in listed and "arithmetic" in listed
    runs = json.loads(ledger("evals", "list", PLAIN[0], "--suite", "sanity", "--json").stdout)
    assert runs[-1]["status"] == "complete" and runs[-1]["subject"]["name"] == "faq-bot"
    shown = ledger("evals", "show", runs[-1]["id"][:8], "--samples", actor=AUDITOR).stdout
    assert shown.startswith(f"Run {runs[-1]['id']}: {PLAIN[0]} on sanity -- complete")
    assert "sanity-01: chose " in shown and "answer: " in shown
    assert "per category (95% Wilson interval for pass/fail metrics):" in shown
    rows = [[c.strip() for c in line.split("│") if c.strip()] for line in shown.splitlines()]
    assert ["sanity_mc", "acc_norm", "geography", "2"] in [r[:4] for r in rows]  # -01 and -02


def test_eval_json_has_metrics_and_no_samples(ledger: Ledger) -> None:
    runs = json.loads(
        ledger("eval", PLAIN[0], "--suite", "sanity", "--limit", "2", "--json").stdout
    )
    assert runs[0]["samples"] == [] and {m["metric"] for m in runs[0]["metrics"]} == {
        "acc",
        "acc_norm",
    }


def test_suites_commands(ledger: Ledger) -> None:
    listed = json.loads(ledger("suites", "list", "--json").stdout)
    assert {s["name"] for s in listed} >= {"northwind-domain", "sanity", "northwind-policy"}
    shown = ledger("suites", "show", "northwind-policy").stdout
    assert (
        "Plain lm-eval: cd " in shown and "--tasks northwind-policy --apply_chat_template" in shown
    )


def test_bad_input_is_one_line_and_exit_2(ledger: Ledger, tmp_path: Path) -> None:
    result = ledger("eval", PLAIN[0], "--suite", "nope", code=2)
    assert result.stderr.startswith("error: no suite named 'nope'; built-in suites: ")
    broken = shutil.copytree(
        Path(__file__).resolve().parents[2] / "harness" / "suites" / "sanity", tmp_path / "s"
    )
    (broken / "sanity.jsonl").unlink()
    result = ledger("eval", PLAIN[0], "--suite", str(broken), code=2)
    assert (
        result.stderr.count("\n") == 1 and "sanity_mc.yaml: field 'dataset_kwargs" in result.stderr
    )
    result = ledger("compare", "faq-nf4@v1", PLAIN[0], "--suite", "northwind-domain", code=2)
    assert "has no complete evaluation on suite 'northwind-domain'" in result.stderr
    result = ledger("eval", PLAIN[0], "--suite", "sanity", actor=AUDITOR, code=1)
    assert "has role auditor" in result.stderr


def test_gate_check_exit_codes(ledger: Ledger, tmp_path: Path) -> None:
    passing = tmp_path / "pass.yaml"
    passing.write_text("version: 1\nenvironments:\n  staging:\n    provenance: {signed: true}\n")
    ledger("policy", "set", str(passing), "--reason", "provenance only", actor=ADMIN)
    out = ledger("gate", "check", PLAIN[0], "--env", "staging").stdout
    assert out.startswith(f"Gate staging for {PLAIN[0]} (digest ") and ": PASSED" in out
    assert "signature and files verify now" in out and "policy policy v" in out
    assert "Gate check " in out and " recorded (inputs sha256 " in out
    failing = tmp_path / "fail.yaml"
    failing.write_text(
        "version: 1\nenvironments:\n  staging:\n    thresholds:\n"
        "      - {suite: northwind-domain, task: northwind_domain_mc, metric: acc, min: 0}\n"
    )
    result = ledger(
        "gate", "check", "faq-nf4@v1", "--env", "staging", "--policy", str(failing), code=1
    )
    assert (
        ": FAILED" in result.stdout
        and "loraledger eval faq-nf4@v1 --suite northwind-domain" in result.stdout
    )
    assert f"Dry run under {failing}, not the registry's policy in force: nothing recorded." in (
        result.stdout
    )
    result = ledger("gate", "check", PLAIN[0], "--env", "prod", code=2)
    assert "has no environment 'prod'; it has staging" in result.stderr
    failing.write_text("version: 1\nenvironments:\n  staging:\n    approvers: 2\n")
    result = ledger("gate", "check", PLAIN[0], "--env", "staging", "--policy", str(failing), code=2)
    assert (
        "fail.yaml:4: field 'environments.staging.approvers': is not a known setting"
        in result.stderr
    )


def test_approve_promote_rollback_and_history(ledger: Ledger, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\nenvironments:\n  staging:\n    provenance: {signed: true}\n"
        "    approvals: {count: 1, role: reviewer}\n"
    )
    p = ["--env", "staging", "--policy", str(policy)]
    result = ledger("promote", PLAIN[0], *p, actor=REVIEWER, code=1)
    assert result.stderr == (
        f"error: refused: {policy} is not the registry's policy in force (policy v1, sha256 "
        f"{json.loads(ledger('policy', 'show', '--json').stdout)['sha256'][:16]}…); approvals "
        "and promotions are judged by it -- leave --policy out, or have an admin make this "
        "file the policy: `loraledger policy set FILE --reason TEXT`\n"
    )
    ledger("policy", "set", str(policy), "--reason", "one reviewer", actor=REVIEWER, code=1)
    out = ledger("policy", "set", str(policy), "--reason", "one reviewer", actor=ADMIN).stdout
    assert out.startswith("Policy 2 is in force (sha256 ") and "set by alice: one reviewer" in out
    assert "+    approvals: {count: 1, role: reviewer}" in out
    history = json.loads(ledger("policy", "history", "--json", actor=AUDITOR).stdout)
    assert [(v["version"], v["reason"]) for v in history] == [
        (1, "provenance only"),
        (2, "one reviewer"),
    ]
    shown = ledger("policy", "show", "--version", "1", actor=AUDITOR).stdout
    assert shown.startswith("# policy v1, sha256 ") and shown.endswith("{signed: true}\n")
    result = ledger("promote", PLAIN[0], *p, actor=REVIEWER, code=1)
    assert result.stderr.startswith("error: refused: the gate for staging fails: 1 approval")
    out = ledger("approve", PLAIN[0], *p, "--comment", "checked", actor=REVIEWER).stdout
    assert out.startswith(f"Approved {PLAIN[0]} for staging as rita (approval ")
    result = ledger("approve", PLAIN[0], *p, "--comment", "mine", actor=ENGINEER, code=1)
    assert "has role engineer" in result.stderr
    assert ledger("promote", PLAIN[0], *p, actor=REVIEWER).stdout.startswith(
        f"staging now runs {PLAIN[0]} (deployment #1, digest "
    )
    ledger("approve", PLAIN[1], *p, "--comment", "checked", actor=REVIEWER)
    ledger("promote", PLAIN[1], *p, actor=REVIEWER)
    out = ledger("rollback", "--env", "staging", "--reason", "worse answers", actor=REVIEWER).stdout
    assert out.startswith(f"staging rolled back to {PLAIN[0]} (deployment #3, digest ")
    history = json.loads(ledger("deployments", "--env", "staging", "--json", actor=AUDITOR).stdout)
    assert [(d["seq"], d["action"], d["adapter"]) for d in history] == [
        (1, "promote", PLAIN[0]),
        (2, "promote", PLAIN[1]),
        (3, "rollback", PLAIN[0]),
    ]
    assert history[2]["reason"] == "worse answers" and history[2]["created_by"] == REVIEWER
    result = ledger("rollback", "--env", "staging", "--reason", " ", actor=REVIEWER, code=2)
    assert "a rollback needs a reason" in result.stderr


def test_sync_and_check(ledger: Ledger, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nenvironments:\n  edge:\n    provenance: {signed: true}\n")
    ledger("policy", "set", str(policy), "--reason", "the edge", actor=ADMIN)
    ledger("promote", PLAIN[1], "--env", "edge", "--policy", str(policy), actor=REVIEWER)
    serve = tmp_path / "serve"
    out = ledger("sync", str(serve), "--env", "edge", "--name", "faq-bot").stdout
    assert out.startswith(f"{serve}/current is {PLAIN[1]} (deployment #1 of edge, digest ")
    assert "matches its signed manifest" in ledger("sync", str(serve), "--check").stdout
    (serve / "current" / "adapter" / "README.md").write_text("tampered")
    result = ledger("sync", str(serve), "--check", code=1)
    assert result.stderr.startswith("error: faq-bot@v2: files do not match the signature")
    result = ledger("sync", str(serve), code=2)
    assert "name the environment with --env ENV" in result.stderr
    result = ledger("sync", str(serve), "--env", "edge", code=2)  # one adapter's folder
    assert "holds one adapter's bundle ('current'); sync that adapter into it" in result.stderr


def test_a_portfolio_through_the_cli(ledger: Ledger, tmp_path: Path) -> None:
    """Two adapters in one environment: status, per-track history, rollback, retire,
    trace and sync each per name (issue #37)."""
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nenvironments:\n  shop:\n    provenance: {signed: true}\n")
    ledger("policy", "set", str(policy), "--reason", "the shop", actor=ADMIN)
    for ref in (PLAIN[0], "wild@v1", PLAIN[1]):
        ledger("promote", ref, "--env", "shop", actor=REVIEWER)
    rows = json.loads(ledger("status", "--env", "shop", "--json", actor=AUDITOR).stdout)
    assert [(r["adapter"], r["deployment_seq"], r["by"]) for r in rows] == [
        (PLAIN[1], 3, REVIEWER), ("wild@v1", 2, REVIEWER)
    ]  # fmt: skip
    assert {"adapter", "digest", "since", "by", "deployment_id"} <= set(rows[0])
    table = ledger("status", actor=AUDITOR).stdout
    assert "shop" in table and PLAIN[1] in table and "wild@v1" in table
    result = ledger("rollback", "--env", "shop", "--reason", "x", actor=REVIEWER, code=2)
    assert "shop has run 2 adapters (faq-bot, wild); name the one to roll back" in result.stderr
    out = ledger("rollback", "faq-bot", "--env", "shop", "--reason", "v2 worse", actor=REVIEWER)
    assert out.stdout.startswith(f"shop rolled back to {PLAIN[0]} (deployment #4, digest ")
    out = ledger("retire", "wild", "--env", "shop", "--reason", "ended", actor=REVIEWER).stdout
    assert out == "shop no longer runs wild (retired wild@v1, deployment #5)\n"
    history = json.loads(ledger("deployments", "--env", "shop", "--name", "wild", "--json").stdout)
    assert [(d["seq"], d["action"], d["track"]) for d in history] == [
        (2, "promote", "wild"), (5, "retire", "wild")
    ]  # fmt: skip
    result = ledger("deployments", "--env", "shop", "--name", "nope", code=1)
    assert "nope was never deployed to shop; its adapters: faq-bot, wild" in result.stderr
    traced = json.loads(ledger("trace", "--env", "shop", "--json", actor=AUDITOR).stdout)
    assert [t["deployment"]["adapter"] for t in traced] == [PLAIN[0]]  # wild runs no more
    ledger("rollback", "wild", "--env", "shop", "--reason", "back", actor=REVIEWER)
    # (wild was registered from elsewhere: its training-run link fails, exit 1)
    one = json.loads(ledger("trace", "--env", "shop", "--name", "wild", "--json", code=1).stdout)
    assert one["deployment"]["adapter"] == "wild@v1"
    serve = tmp_path / "serving"
    out = ledger("sync", str(serve), "--env", "shop").stdout
    assert f"{serve}/adapters/faq-bot/current is {PLAIN[0]} (deployment #4 of shop" in out
    assert f"{serve}/adapters/wild/current is wild@v1 (deployment #6 of shop" in out
    manifest = json.loads((serve / "environment.json").read_text())
    assert sorted(manifest["adapters"]) == ["faq-bot", "wild"]
    ledger("retire", "wild", "--env", "shop", "--reason", "for good", actor=REVIEWER)
    out = ledger("sync", str(serve), "--env", "shop").stdout
    assert f"{serve}/adapters/wild: shop no longer runs it; taken out" in out
    assert not (serve / "adapters" / "wild" / "current").exists()
    assert (serve / "adapters" / "faq-bot" / "current" / "adapter").is_dir()


def test_trace_and_impact(ledger: Ledger, tmp_path: Path) -> None:
    out = ledger("trace", PLAIN[0], actor=AUDITOR).stdout
    assert out.startswith(f"Trace of {PLAIN[0]} (sha256:") and out.rstrip().endswith(
        "Every link verified."
    )
    assert "[ok  ] training run " in out and "[ok  ] dataset faq@v1: " in out
    result = ledger("trace", "wild@v1", actor=AUDITOR, code=1)
    assert "[FAIL] training run none: registered from elsewhere" in result.stdout
    result = ledger("trace", "--env", "staging", "--at", "yesterday", code=2)
    assert "--at 'yesterday' is not a time" in result.stderr
    ledger("trace", PLAIN[0], "--env", "staging", code=2)
    record = tmp_path / "record.json"
    record.write_text('{"messages": [{"role": "user", "content": "x"}')
    result = ledger("data", "impact", "--record-file", str(record), code=2)
    assert result.stderr.startswith(f"error: {record}:1: invalid JSON: Expecting")
    record.write_text('{"messages": [{"role": "user", "content": "never"}]}')
    out = ledger("data", "impact", "--record-file", str(record)).stdout
    assert "in datasets:    none" in out and "deployed now:   none" in out
