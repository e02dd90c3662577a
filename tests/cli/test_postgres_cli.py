"""The command line on a PostgreSQL registry: one setting says where the registry lives,
the store's location is recorded in it, and bad URLs get one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.conftest import small_adapter
from tests.postgres import PASSWORD, Server


@pytest.fixture
def pg_cli(postgres_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    url = postgres_server.create_database(f"cli_{tmp_path.name[-20:].lower()}")
    return Cli(url, tmp_path / "keys")


def test_init_records_the_store_and_later_commands_need_only_the_url(
    pg_cli: Cli, tmp_path: Path
) -> None:
    url = pg_cli.env["LORALEDGER_REGISTRY"]
    out = pg_cli("init", "--store", str(tmp_path / "store")).stdout
    assert out.startswith(f"Initialised registry {url} with its store in {tmp_path / 'store'} (id ")
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["objects", "tmp"]
    pg_cli("keys", "create", "alice", "--role", "admin")
    pg_cli("keys", "create", "eve", "--role", "engineer", actor="alice")
    adapter = small_adapter(tmp_path / "adapter")
    assert (
        "bank@v1"
        in pg_cli("adapters", "register", str(adapter), "--name", "bank", actor="eve").stdout
    )
    assert pg_cli("adapters", "verify", "bank@v1").stdout.startswith("Verified bank@v1: 3 files")
    assert pg_cli("audit", "verify").stdout.startswith("Audit log verified: 4 events")
    objects = list((tmp_path / "store" / "objects" / "sha256").glob("*/*"))
    assert len(objects) >= 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["init"], "error: a PostgreSQL registry needs --store"),
        (["--registry", "postgresql://a:pw@127.0.0.1:1/x", "audit", "log"],
         "error: the registry URL holds a password; take it out"),
        (["--registry", "postgresql://a@127.0.0.1:1", "audit", "log"],
         "error: the registry URL 'postgresql://a@127.0.0.1:1' names no database"),
        (["audit", "log"], "error: "),
    ],
)  # fmt: skip
def test_bad_registry_urls_exit_2_with_one_line(pg_cli: Cli, args: list[str], message: str) -> None:
    result = pg_cli(*args, code=2)
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_directory_registry_refuses_a_store(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "reg", tmp_path / "keys")
    result = cli("init", "--store", str(tmp_path / "store"), code=2)
    assert result.stderr.startswith("error: --store is for a PostgreSQL registry")
    assert not (tmp_path / "reg").exists()


def test_db_roles_prints_or_runs_the_grants(pg_cli: Cli, tmp_path: Path) -> None:
    pg_cli("init", "--store", str(tmp_path / "store"))
    printed = pg_cli("db-roles", "--print", "--writer", "eve_w", "--auditor", "otto_a").stdout
    assert 'GRANT loraledger_writer TO "eve_w";' in printed
    assert (
        'GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO loraledger_writer, loraledger_auditor;'
        in printed
    )
    assert 'UPDATE ON "public".identities TO loraledger_writer' in printed
    ran = pg_cli("db-roles").stdout
    assert ran.startswith("Roles on postgresql://") and "for nobody yet" in ran


def test_db_roles_on_a_directory_registry_exits_2(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "reg", tmp_path / "keys")
    result = cli("db-roles", code=2)
    assert result.stderr.startswith("error: db-roles is for a registry on PostgreSQL")
