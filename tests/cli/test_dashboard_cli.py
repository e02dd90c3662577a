"""``loraledger dashboard add-user`` and the checks ``loraledger dashboard`` makes before
it starts the server: one-line errors, nothing half-written."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from loraledger.cli import app

ENV = {"LORALEDGER_ACTOR": None}


def run(tmp_path: Path, *args: str, code: int = 0, stdin: str | None = None) -> str:
    env = {**ENV, "LORALEDGER_REGISTRY": str(tmp_path / "reg"),
           "LORALEDGER_KEYS_DIR": str(tmp_path / "keys")}  # fmt: skip
    result = CliRunner().invoke(app, list(args), env=env, input=stdin)
    assert result.exit_code == code, (args, result.stdout, result.stderr, result.exception)
    return result.stdout + result.stderr


def test_add_user_maps_a_sign_in_to_an_identity(tmp_path: Path) -> None:
    run(tmp_path, "init")
    run(tmp_path, "keys", "create", "alice", "--role", "admin")
    out = run(tmp_path, "dashboard", "add-user", "alice", "--identity", "alice",
              "--password-stdin", stdin="a long enough secret\n")  # fmt: skip
    assert "Dashboard user alice signs in as alice (admin)" in out
    accounts = tmp_path / "reg" / "dashboard-accounts.yaml"
    assert "a long enough secret" not in accounts.read_text()
    out = run(tmp_path, "dashboard", "add-user", "bob", "--identity", "nobody",
              "--password-stdin", stdin="a long enough secret\n", code=2)  # fmt: skip
    assert "unknown identity 'nobody'" in out and "bob" not in accounts.read_text()
    out = run(tmp_path, "dashboard", "add-user", "alice", "--identity", "alice",
              "--password-stdin", stdin="a long enough secret\n", code=1)  # fmt: skip
    assert "already exists" in out and "--replace" in out


def test_the_server_is_not_started_on_bad_input(tmp_path: Path) -> None:
    out = run(tmp_path, "dashboard", code=2)
    assert "no registry at" in out
    run(tmp_path, "init")
    out = run(tmp_path, "dashboard", code=2)
    assert "no dashboard accounts at" in out and "dashboard add-user" in out
    (tmp_path / "reg" / "dashboard-accounts.yaml").write_text("version: 1\nusers: {}\n")
    out = run(tmp_path, "dashboard", code=2)
    assert "cookie_key" in out
