"""``loraledger dashboard add-user`` and the checks ``loraledger dashboard`` makes before
it starts the server: one-line errors, nothing half-written."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli

SECRET = "a long enough secret\n"


def output(cli: Cli, *args: str, code: int = 0, stdin: str | None = None) -> str:
    result = cli(*args, code=code, stdin=stdin)
    return result.stdout + result.stderr


def test_add_user_maps_a_sign_in_to_an_identity(cli: Cli, tmp_path: Path) -> None:
    cli("init")
    cli("keys", "create", "alice", "--role", "admin")
    out = output(cli, "dashboard", "add-user", "alice", "--identity", "alice",
                 "--password-stdin", stdin=SECRET)  # fmt: skip
    assert "Dashboard user alice signs in as alice (admin)" in out
    accounts = tmp_path / "reg" / "dashboard-accounts.yaml"
    assert SECRET.strip() not in accounts.read_text()
    out = output(cli, "dashboard", "add-user", "bob", "--identity", "nobody",
                 "--password-stdin", stdin=SECRET, code=2)  # fmt: skip
    assert "unknown identity 'nobody'" in out and "bob" not in accounts.read_text()
    out = output(cli, "dashboard", "add-user", "alice", "--identity", "alice",
                 "--password-stdin", stdin=SECRET, code=1)  # fmt: skip
    assert "already exists" in out and "--replace" in out


def test_the_server_is_not_started_on_bad_input(cli: Cli, tmp_path: Path) -> None:
    out = output(cli, "dashboard", code=2)
    assert "no registry at" in out
    cli("init")
    out = output(cli, "dashboard", code=2)
    assert "no dashboard accounts at" in out and "dashboard add-user" in out
    (tmp_path / "reg" / "dashboard-accounts.yaml").write_text("version: 1\nusers: {}\n")
    out = output(cli, "dashboard", code=2)
    assert "cookie_key" in out
