"""The tests' PostgreSQL server (tests/postgres.py): a real server, reached over TCP with
a password given the way users give it (PGPASSWORD), never in the URL."""

from __future__ import annotations

import subprocess

import pytest

from tests.postgres import PASSWORD, Server


def test_the_server_answers_with_the_password_and_refuses_without(
    postgres_server: Server,
) -> None:
    url = postgres_server.create_database("answers")
    assert PASSWORD not in url and url.startswith("postgresql://loraledger@127.0.0.1:")
    assert postgres_server.psql("SELECT 40 + 2", database="answers") == "42"
    assert int(postgres_server.psql("SHOW server_version_num")) >= 150000
    env = {k: v for k, v in postgres_server.environ().items() if k != "PGPASSWORD"}
    refused = subprocess.run(
        [str(postgres_server.bin / "psql"), "-X", "-w", "-d", url, "-c", "SELECT 1"],
        env={**env, "PGPASSFILE": "/nonexistent"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0 and "password" in refused.stderr


def test_a_failing_statement_is_reported(postgres_server: Server) -> None:
    with pytest.raises(RuntimeError, match="no_such_table"):
        postgres_server.psql("SELECT * FROM no_such_table")
