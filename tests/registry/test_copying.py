"""`registry copy`: a registry with every kind of record moves from a directory to
PostgreSQL and back, the same registry (id, chain, rows, files), verified at each end;
a copy that cannot be made whole leaves nothing behind."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from loraledger.harness.compare import compare
from loraledger.harness.evaluate import EvalOptions, evaluate
from loraledger.policies.approvals import decide
from loraledger.policies.deployments import promote
from loraledger.registry import Registry, Role
from loraledger.registry.copying import copy_registry
from loraledger.registry.s3 import S3Objects

from loraledger.errors import InputError, UsageError, VerificationError
from tests.cli.conftest import Cli
from tests.conftest import ADMIN, ENGINEER, REVIEWER
from tests.harness.conftest import PLAIN, eval_registry  # noqa: F401  (fixture)
from tests.policies.helpers import POLICY, use_policy
from tests.postgres import PASSWORD, Server
from tests.registry.helpers import checkpoint_file
from tests.s3 import S3Server


@pytest.fixture(scope="module")
def backend() -> str:
    return "duckdb"  # this module makes its own PostgreSQL databases


@pytest.fixture(scope="module")
def everything(eval_registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """Every kind of record: identities (one revoked), a dataset, a base model, trained
    versions with provenance, evaluation runs with samples and test results, a
    comparison, gate checks, approvals and a deployment."""
    reg = eval_registry
    policy = tmp_path_factory.mktemp("policy") / "policy.yaml"
    policy.write_text(POLICY)
    use_policy(reg, policy)
    reg.identities.create("ruby", Role.REVIEWER, actor=ADMIN)
    reg.identities.create("mallory", Role.ENGINEER, actor=ADMIN)
    reg.identities.revoke("mallory", reason="left the team", actor=ADMIN)
    evaluate(reg, list(PLAIN), "sanity", actor=ENGINEER, options=EvalOptions(limit=2))
    compare(reg, PLAIN[1], PLAIN[0], "sanity", actor=ENGINEER, n_resamples=99)
    decide(reg, PLAIN[0], "staging", "approve", comment="ok", actor=REVIEWER, policy=policy)
    promote(reg, PLAIN[0], "staging", actor="ruby", policy=policy)
    return reg


def _all_rows(registry: Registry) -> dict[str, list[Any]]:
    with registry.db.read() as conn:
        tables = [
            str(r[0])
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = "
                "'BASE TABLE' AND table_schema = current_schema() ORDER BY table_name"
            ).fetchall()
        ]
        return {
            t: sorted(tuple(map(str, r)) for r in conn.execute(f"SELECT * FROM {t}").fetchall())
            for t in tables
            if t not in ("schema_migrations", "registry_meta")
        }


def test_a_registry_round_trips_through_postgresql(
    everything: Registry,
    postgres_server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    url = postgres_server.create_database("copy_round_trip")
    keys = everything.keys
    there = copy_registry(everything.address, url, store=tmp_path / "store", keys=keys)
    assert there.registry_id == everything.registry_id
    assert there.rows["audit_events"] == everything.audit_head()[0]
    assert there.verified["adapter_signatures"] == len(everything.adapters.list()) >= 5
    assert there.verified["eval_runs"] >= 2 and there.verified["comparisons"] == 1
    assert there.verified["approvals"] == 1 and there.verified["deployments"] == 1
    assert there.verified["base_model_files"] == 1 and there.verified["dataset_files"] == 1
    on_pg = Registry.open(url, keys=keys)
    assert on_pg.root == tmp_path / "store" and on_pg.audit_head() == everything.audit_head()
    assert _all_rows(on_pg) == _all_rows(everything)
    assert on_pg.deployments.current("staging").adapter == PLAIN[0]  # type: ignore[union-attr]
    # and back, as an auditor takes it home
    back = copy_registry(url, tmp_path / "home", keys=keys)
    assert back.head_seq == there.head_seq and back.objects == there.objects
    home = Registry.open(tmp_path / "home", keys=keys)
    assert _all_rows(home) == _all_rows(everything)
    assert sorted(home.store.digests()) == sorted(everything.store.digests())
    # the copy is a registry like any other: it takes new changes
    home.identities.create("newcomer", Role.AUDITOR, actor=ADMIN)
    home.verify_audit()


def test_a_registry_round_trips_through_postgresql_with_an_s3_store(
    everything: Registry,
    postgres_server: Server,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    url = postgres_server.create_database("copy_to_s3")
    prefix = s3_server.new_prefix()
    there = copy_registry(everything.address, url, store=prefix, keys=everything.keys)
    assert there.objects == len(list(everything.store.digests()))
    assert there.verified["adapter_signatures"] == len(everything.adapters.list())
    published = S3Objects(prefix)
    assert len(list(published.keys("checkpoints/"))) == len(
        checkpoint_file(everything).read_text().splitlines()
    )
    # another machine (an empty cache) takes it home as a directory: every object comes
    # down from the bucket, verified
    monkeypatch.setenv("LORALEDGER_CACHE", str(tmp_path / "laptop-cache"))
    back = copy_registry(url, tmp_path / "home", keys=everything.keys)
    assert back.objects == there.objects and back.head_seq == there.head_seq
    home = Registry.open(tmp_path / "home", keys=everything.keys)
    assert _all_rows(home) == _all_rows(everything)
    assert checkpoint_file(home).read_text() == checkpoint_file(everything).read_text()
    # a copy into a used prefix is refused, and leaves the bucket as it was
    again = postgres_server.create_database("copy_to_s3_again")
    with pytest.raises(InputError, match="already holds objects"):
        copy_registry(everything.address, again, store=prefix, keys=everything.keys)
    assert len(list(published.keys("checkpoints/"))) == len(
        checkpoint_file(everything).read_text().splitlines()
    )


def test_the_command_line_copies_and_says_what_it_verified(
    everything: Registry, postgres_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    url = postgres_server.create_database("copy_cli")
    cli = Cli(tmp_path / "unused", everything.keys.directory)
    out = cli("registry", "copy", str(everything.address), url, "--store", str(tmp_path / "s"))
    first, second = out.stdout.splitlines()
    assert first.startswith(
        f"Copied registry {everything.registry_id} from {everything.root} to {url}: "
    )
    assert second.startswith("Verified the copy: ") and "adapter_signatures" in second
    again = cli(
        "registry", "copy", str(everything.address), url, "--store", str(tmp_path / "t"), code=2
    )
    assert "already holds a registry; copy into an empty database" in again.stderr
    assert not (tmp_path / "t").exists()
    missing = cli("registry", "copy", str(everything.address), url, code=2)
    assert missing.stderr.startswith("error: a copy into PostgreSQL needs --store")


def test_a_damaged_object_stops_the_copy_and_leaves_nothing(
    everything: Registry, postgres_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Path(shutil.copytree(everything.root.parent, tmp_path / "src"))
    damaged = Registry.open(source / "reg", keys=everything.keys)
    target = damaged.store.path_of(sorted(damaged.store.digests())[0])
    target.chmod(0o644)
    target.write_bytes(target.read_bytes() + b"!")
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    url = postgres_server.create_database("copy_damaged")
    with pytest.raises(VerificationError, match=f"store object .*{target.name} does not hash"):
        copy_registry(damaged.address, url, store=tmp_path / "store", keys=everything.keys)
    assert not (tmp_path / "store").exists()
    assert (
        postgres_server.psql(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", "copy_damaged"
        )
        == "0"
    )
    with pytest.raises(VerificationError):
        copy_registry(damaged.address, tmp_path / "dir", keys=everything.keys)
    assert not (tmp_path / "dir").exists()


def test_a_destination_that_is_not_empty_is_refused(everything: Registry, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine").write_text("keep me")
    with pytest.raises(InputError, match="exists and is not an empty directory"):
        copy_registry(everything.address, tmp_path / "full", keys=everything.keys)
    assert (tmp_path / "full" / "mine").read_text() == "keep me"
    with pytest.raises(UsageError, match="--store is for a copy into PostgreSQL"):
        copy_registry(everything.address, tmp_path / "d", store=tmp_path / "s")
