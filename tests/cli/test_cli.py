"""The `loraledger` command as a user sees it: exact lines, exit codes, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer

from loraledger.cli import app
from tests.cli.conftest import Cli
from tests.conftest import small_adapter

REPO = Path(__file__).resolve().parents[2]


def test_init_and_keys(cli: Cli, tmp_path: Path) -> None:
    out = cli("init").stdout.splitlines()
    assert out[0].startswith(f"Initialised registry {tmp_path / 'reg'} (id ")
    assert out[1] == "Next: loraledger keys create NAME --role admin"
    out = cli("keys", "create", "alice", "--role", "admin").stdout.splitlines()
    assert out[0] == "Created identity alice (admin)"
    assert out[1] == f"  private key: {tmp_path / 'keys' / 'alice.pem'}"
    pem = cli("keys", "export-public", "alice").stdout
    assert pem.startswith("-----BEGIN PUBLIC KEY-----") and pem.endswith(
        "-----END PUBLIC KEY-----\n"
    )
    exported = json.loads(cli("keys", "export-public", "alice", "--json").stdout)
    assert exported["public_key_pem"] == pem and len(exported["key_fingerprint"]) == 64
    listed = json.loads(cli("keys", "list", "--json").stdout)
    assert [(i["name"], i["role"], i["status"]) for i in listed] == [("alice", "admin", "active")]
    assert "alice" in cli("keys", "list").stdout


def test_keys_generate_and_enrol_the_public_key(ready: Cli, tmp_path: Path) -> None:
    bob = Cli(tmp_path / "reg", tmp_path / "bobs-keys")  # bob's own machine
    pub = tmp_path / "bob.pub"
    made = bob("keys", "generate", "bob", "-o", str(pub))
    assert made.stdout == "" and pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert f"the private key stays at {tmp_path / 'bobs-keys' / 'bob.pem'}" in made.stderr
    out = ready("keys", "create", "bob", "--role", "reviewer", "--public-key", str(pub),
                actor="alice")  # fmt: skip
    assert (
        out.stdout.splitlines()[1] == f"  enrolled public key from {pub}; bob holds the private key"
    )
    assert "note:" not in out.stderr and not (tmp_path / "keys" / "bob.pem").exists()
    bob("keys", "export-public", "bob")
    # the one-step form for someone else says who now holds the key
    made_here = ready("keys", "create", "carl", "--role", "engineer", actor="alice")
    assert "note: carl's private key was made in your key directory" in made_here.stderr
    private = ready("keys", "create", "dan", "--role", "engineer", "--public-key",
                    str(tmp_path / "keys" / "carl.pem"), actor="alice", code=2)  # fmt: skip
    assert "carl.pem: is a private key" in private.stderr


def test_register_list_show_verify_fetch(ready: Cli, tmp_path: Path) -> None:
    adapter = small_adapter(tmp_path / "adapter")
    out = ready("adapters", "register", str(adapter), "--name", "bank", actor="eve").stdout
    lines = out.splitlines()
    assert lines[0] == "Registered bank@v1"
    assert lines[1].startswith("  digest sha256:") and lines[1].endswith(
        "3 files, 10.6 kB, signed by eve"
    )
    versions = json.loads(ready("adapters", "list", "--json").stdout)
    assert [v["name"] + "@v" + str(v["version"]) for v in versions] == ["bank@v1"]
    digest = versions[0]["digest"]
    table = ready("adapters", "list").stdout
    assert "bank@v1" in table and digest[:16] in table
    shown = json.loads(ready("adapters", "show", "bank@v1", "--json").stdout)
    assert [f["path"] for f in shown["files"]] == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert "adapter_model.safetensors" in ready("adapters", "show", "bank").stdout
    assert ready("adapters", "verify", "bank").stdout == (
        f"Verified bank@v1: 3 files, 10.6 kB, digest sha256:{digest}, signed by eve\n"
    )
    report = json.loads(ready("adapters", "verify", "bank@v1", "--json").stdout)
    assert report["files_verified"] == 3
    dest = tmp_path / "out"
    assert ready("adapters", "fetch", "bank", str(dest)).stdout == (
        f"Fetched bank@v1 to {dest} (verified, digest sha256:{digest})\n"
    )
    bundle = json.loads(ready("adapters", "signature", "bank@v1").stdout)
    assert bundle["mediaType"].startswith("application/vnd.dev.sigstore.bundle")


def test_audit_commands(ready: Cli) -> None:
    out = ready("audit", "verify").stdout
    assert out.startswith("Audit log verified: 3 events, 4 signed checkpoints, head #3 ")
    head = ready("audit", "head").stdout.strip()
    seq, digest = head.split(":")
    assert seq == "3" and len(digest) == 64
    assert ready("audit", "verify", "--expect-head", head).exit_code == 0
    events = json.loads(ready("audit", "log", "--json").stdout)
    assert [e["action"] for e in events] == ["registry.init", "identity.create", "identity.create"]
    assert json.loads(ready("audit", "log", "--json", "--limit", "1").stdout)[0]["seq"] == 3
    assert len(json.loads(ready("audit", "log", "--json", "--actor", "alice").stdout)) == 2
    assert "identity.create" in ready("audit", "log").stdout
    assert json.loads(ready("audit", "head", "--json").stdout)["seq"] == 3


def test_tampering_exits_1_with_one_line(ready: Cli, tmp_path: Path) -> None:
    adapter = small_adapter(tmp_path / "adapter")
    ready("adapters", "register", str(adapter), "--name", "bank", actor="eve")
    objects = tmp_path / "reg" / "objects" / "sha256"
    weights = next(p for p in objects.glob("*/*") if p.stat().st_size > 5000)
    weights.chmod(0o644)
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    result = ready("adapters", "verify", "bank", code=1)
    assert result.stdout == ""
    assert result.stderr == (
        "error: files do not match the signature (changed: adapter_model.safetensors)\n"
    )
    result = ready("adapters", "fetch", "bank", str(tmp_path / "out"), code=1)
    assert not (tmp_path / "out").exists()


def test_register_link_stores_the_directorys_own_files(ready: Cli, tmp_path: Path) -> None:
    adapter = small_adapter(tmp_path / "adapter")
    out = ready("adapters", "register", str(adapter), "--name", "bank", "--link", "--json",
                actor="eve").stdout  # fmt: skip
    weights = next(f for f in json.loads(out)["files"] if f["path"].endswith(".safetensors"))
    stored = tmp_path / "reg" / "objects" / "sha256" / weights["sha256"][:2] / weights["sha256"]
    assert stored.stat().st_ino == (adapter / weights["path"]).stat().st_ino
    assert "Verified bank@v1" in ready("adapters", "verify", "bank").stdout


def test_audit_tampering_exits_1(ready: Cli, tmp_path: Path) -> None:
    import duckdb

    conn = duckdb.connect(str(tmp_path / "reg" / "registry.duckdb"))
    conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    conn.close()
    assert ready("audit", "verify", code=1).stderr == (
        "error: audit chain broken at event #2: its content does not match its hash "
        "(the event was edited)\n"
    )


@pytest.mark.parametrize(
    ("args", "actor", "message"),
    [
        (
            ["adapters", "register", "{adapter}", "--name", "a/b"],
            "eve",
            "error: adapter name 'a/b' is invalid: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no path separators, quotes, spaces or control "
            "characters)\n",
        ),
        (
            ["adapters", "register", "{adapter}", "--name", "x"],
            None,
            "error: no acting identity: pass --as NAME or set LORALEDGER_ACTOR\n",
        ),
        (
            ["adapters", "register", "{adapter}", "--name", "x"],
            "ghost",
            "error: unknown identity 'ghost'; see `loraledger keys list` for the registered ones\n",
        ),
        (
            ["adapters", "register", "{tmp}/none", "--name", "x"],
            "eve",
            "error: {tmp}/none: adapter directory does not exist\n",
        ),
        (
            ["adapters", "verify", "nope"],
            None,
            "error: no adapter named 'nope'; see `loraledger adapters list`\n",
        ),
        (
            ["audit", "verify", "--expect-head", "7"],
            None,
            "error: --expect-head '7' is invalid: write SEQ:HASH as printed by `loraledger audit "
            "head`\n",
        ),
    ],
)
def test_bad_input_exits_2(
    ready: Cli, tmp_path: Path, args: list[str], actor: str | None, message: str
) -> None:
    small_adapter(tmp_path / "adapter")
    argv = [a.format(adapter=tmp_path / "adapter", tmp=tmp_path) for a in args]
    result = ready(*argv, actor=actor, code=2)
    assert result.stderr == message.format(tmp=tmp_path)


def test_refusals_exit_1(ready: Cli, tmp_path: Path) -> None:
    ready("keys", "create", "otto", "--role", "auditor", actor="alice")
    adapter = small_adapter(tmp_path / "adapter")
    result = ready("adapters", "register", str(adapter), "--name", "x", actor="otto", code=1)
    assert (
        result.stderr == "error: identity 'otto' has role auditor; this needs admin or engineer\n"
    )
    ready("keys", "revoke", "eve", "--reason", "left the team", actor="alice")
    result = ready("adapters", "register", str(adapter), "--name", "x", actor="eve", code=1)
    assert result.stderr == (
        "error: identity 'eve' was revoked (left the team); act as an active identity\n"
    )


def test_not_a_registry_exits_2(cli: Cli, tmp_path: Path) -> None:
    result = cli("adapters", "list", code=2)
    assert result.stderr == (
        f"error: no registry at {tmp_path / 'reg'}; run `loraledger init` there, or pass "
        "--registry / set LORALEDGER_REGISTRY\n"
    )


def test_usage_errors_exit_2(ready: Cli) -> None:
    assert "Missing option '--name'" in ready("adapters", "register", ".", code=2).stderr
    assert ready("keys", "create", "x", "--role", "wizard", code=2).exit_code == 2


def test_verbose_shows_the_traceback(ready: Cli) -> None:
    result = ready("--verbose", "adapters", "verify", "nope", code=2)
    assert "Traceback" in result.stderr and result.stderr.endswith(
        "error: no adapter named 'nope'; see `loraledger adapters list`\n"
    )


def _commands(group: object, prefix: str = "loraledger") -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name, command in getattr(group, "commands", {}).items():
        path = f"{prefix} {name}"
        found.append((path, command))
        found.extend(_commands(command, path))
    return found


ALL_COMMANDS = _commands(typer.main.get_command(app))


def test_every_command_has_help_and_a_place_in_the_docs() -> None:
    docs = (REPO / "docs" / "cli.md").read_text()
    assert len(ALL_COMMANDS) >= 15
    for path, command in ALL_COMMANDS:
        assert getattr(command, "help", None), f"{path} has no help text"
        assert f"`{path}" in docs, f"{path} is not documented in docs/cli.md"


@pytest.mark.parametrize("path", [p for p, _ in ALL_COMMANDS])
def test_help_runs(cli: Cli, path: str) -> None:
    assert "Usage:" in cli(*path.split()[1:], "--help").stdout


def test_read_commands_do_not_import_the_ml_stack(ready: Cli, tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from loraledger.cli import app\n"
        "try:\n"
        "    app(['adapters', 'list', '--json'], prog_name='loraledger')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code in (0, None), exit.code\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'lm_eval', 'model_signing')\n"
        "         if m in sys.modules]\n"
        "print('heavy:', heavy)\n"
    )
    env = {**os.environ, **{k: v for k, v in ready.env.items() if v is not None}}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("heavy: []")


def test_data_commands(ready: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bank.jsonl"
    records = [
        {"prompt": "Fees?", "completion": "None for students."},
        {"prompt": "Call?", "completion": "Dial (415) 555-2671."},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = ready(
        "data",
        "add",
        str(path),
        "--name",
        "bank",
        "--source",
        "team",
        "--license",
        "cc-by-4.0",
        actor="eve",
    ).stdout.splitlines()
    assert out[0] == "Registered bank@v1"
    assert out[1].startswith("  2 prompt-completion records, 0 duplicates, merkle root ")
    assert out[2] == "  PII phone: 1 on lines 2"
    assert out[3] == "  git: the file is not in a git work tree"
    listed = json.loads(ready("data", "list", "--json").stdout)
    assert [(d["name"], d["license"], d["pii"]) for d in listed] == [
        ("bank", "CC-BY-4.0", {"phone": {"count": 1, "lines": [2]}})
    ]
    assert "phone 1" in ready("data", "list").stdout
    assert "PII phone: 1 on lines 2" in ready("data", "show", "bank").stdout
    assert ready("data", "verify", "bank").stdout.startswith("Verified bank@v1: file sha256:")
    proved = ready("data", "prove", "bank", "--record", json.dumps(records[1])).stdout
    assert proved.startswith("The record (sha256 ")
    assert "is in bank@v1: line 2, leaf 2 of 2; the inclusion proof verifies" in proved
    proof = json.loads(
        ready("data", "prove", "bank", "--record", json.dumps(records[0]), "--json").stdout
    )
    assert proof["line"] == 1 and proof["proof"]["metadata"]["size"] == 2
    missing = ready(
        "data", "prove", "bank", "--record", '{"prompt": "x", "completion": "y"}', code=2
    )
    assert "is not in bank@v1" in missing.stderr
    assert ready("data", "prove", "bank", code=2).stderr == (
        "error: give the record with exactly one of --record or --record-file\n"
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(records[0]) + "\n" + '{"prompt": 1, "completion": "x"}\n')
    result = ready(
        "data",
        "add",
        str(bad),
        "--name",
        "bad",
        "--source",
        "s",
        "--license",
        "MIT",
        actor="eve",
        code=2,
    )
    assert result.stderr == (f"error: {bad}:2: field 'prompt': Input should be a valid string\n")


def test_a_person_s_keys_over_time(ready: Cli, tmp_path: Path) -> None:
    """add-key, show, rotate, retire and revoke, each person's key made on its machine."""
    ci = Cli(tmp_path / "reg", tmp_path / "eves-ci")
    ci("keys", "generate", "eve", "-o", str(tmp_path / "eve-ci.pub"))
    out = ready("keys", "add-key", "eve", "--public-key", str(tmp_path / "eve-ci.pub"),
                "--label", "ci", actor="alice").stdout  # fmt: skip
    assert out.startswith("Enrolled key ") and "(ci) of eve" in out
    assert "as one person" in out
    shown = json.loads(ready("keys", "show", "eve", "--json").stdout)
    assert [k["label"] for k in shown["keys"]] == ["enrolment", "ci"]
    ci_key = shown["keys"][1]["key_fingerprint"]
    assert "(ci)" in ready("keys", "list").stdout
    ci("adapters", "register", str(small_adapter(tmp_path / "a")), "--name", "bank", actor="eve")
    laptop = Cli(tmp_path / "reg", tmp_path / "eves-new-laptop")
    laptop("keys", "generate", "eve", "-o", str(tmp_path / "eve-new.pub"))
    # two active keys: rotate asks which one
    refused = ready("keys", "rotate", "eve", "--public-key", str(tmp_path / "eve-new.pub"),
                    actor="alice", code=2)  # fmt: skip
    assert "holds 2 active keys" in refused.stderr
    ready("keys", "retire", "eve", "--key", ci_key[:10], "--reason", "runner gone", actor="alice")
    rotated = ready("keys", "rotate", "eve", "--public-key", str(tmp_path / "eve-new.pub"),
                    actor="alice").stdout  # fmt: skip
    assert "Rotated eve" in rotated and "what it signed stays valid" in rotated
    # what the retired CI key signed still verifies, from any machine
    assert "verified" in laptop("adapters", "verify", "bank@v1").stdout.lower()
    table = ready("keys", "show", "eve").stdout
    assert "retired" in table and "runner gone" in table
    # bad input: one line, exit 2, nothing recorded
    events = len(json.loads(ready("audit", "log", "--json").stdout))
    for args, message in (
        (["retire", "eve", "--key", "zz", "--reason", "x"], "holds no key 'zz'"),
        (["revoke", "eve", "--reason", "x", "--compromised-since", "monday"], "is not a time"),
        (["revoke", "eve", "--reason", "x", "--compromised-since", "2999-01-01"], "in the future"),
        (["revoke", "eve", "--reason", "x", "--key", ci_key[:10]], "--key names one key"),
    ):
        result = ready("keys", *args, actor="alice", code=2)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert len(json.loads(ready("audit", "log", "--json").stdout)) == events
    # the laptop is stolen: what it signs from now on is void
    since = datetime.now(UTC).isoformat()
    out = ready("keys", "revoke", "eve", "--reason", "stolen", "--compromised-since", since,
                actor="alice").stdout  # fmt: skip
    assert "as compromised: its signatures from audit event #" in out
    left = ready("keys", "revoke", "alice", "--reason", "left", actor="alice", code=1)
    assert "last active admin" in left.stderr
