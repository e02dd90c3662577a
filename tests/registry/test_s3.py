"""A PostgreSQL registry whose store is S3-compatible object storage (tests/s3.py: moto's
server, an emulator, over real HTTP): artifacts and published checkpoints live in the
bucket, each machine keeps a cache of objects it verified, and what an insider with
write access to the bucket changes is refused where it is read."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from loraledger.registry import AdapterVersion, Registry
from loraledger.registry.s3 import S3Objects

from loraledger.errors import InputError, StorageError, UsageError, VerificationError
from tests.cli.conftest import Cli
from tests.conftest import ADMIN, ENGINEER, init_registry, new_location
from tests.registry.helpers import sql
from tests.registry.test_datasets import add
from tests.s3 import BUCKET, S3Server


@pytest.fixture(scope="module")
def backend() -> str:
    return "postgresql+s3"


def _bucket(server: S3Server):  # type: ignore[no-untyped-def]
    """The bucket as an insider with the team's S3 credentials sees it."""
    env = server.environment
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def _prefix(registry: Registry) -> str:
    return registry.store_address.removeprefix(f"s3://{BUCKET}/")


def _other_machine(registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The registry opened as on another machine: an empty cache of its own."""
    monkeypatch.setenv("LORALEDGER_CACHE", str(tmp_path / "other-machine-cache"))
    return Registry.open(registry.address, keys=registry.keys)


def test_the_artifacts_and_checkpoints_live_in_the_bucket(
    registered: AdapterVersion, registry: Registry, s3_server: S3Server
) -> None:
    objects = S3Objects(registry.store_address)
    stored = set(objects.keys("objects/"))
    for entry in registered.files:
        assert f"objects/sha256/{entry.sha256[:2]}/{entry.sha256}" in stored
    assert f"objects/sha256/{registered.bundle_sha256[:2]}/{registered.bundle_sha256}" in stored
    with registry.db.read() as conn:
        in_db = conn.execute("SELECT count(*) FROM audit_checkpoints").fetchone()
        setting = conn.execute("SELECT value FROM registry_meta WHERE key = 'store'").fetchone()
    published = list(objects.keys("checkpoints/"))
    assert in_db is not None and len(published) == in_db[0] > 0
    assert setting is not None and setting[0] == registry.store_address
    newest = registry.audit.last_published()
    assert newest is not None and newest.seq == registry.audit_head()[0]


def test_another_machine_reads_every_record_verified(
    registered: AdapterVersion,
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = tmp_path / "bank.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "completion": f"a{i}"}) + "\n" for i in range(5))
    )
    dataset = add(registry, data)
    there = _other_machine(registry, tmp_path, monkeypatch)
    assert not (tmp_path / "other-machine-cache").exists() or not any(
        (tmp_path / "other-machine-cache").rglob("sha256/*/*")
    )
    report = there.adapters.fetch(registered.ref, tmp_path / "out")
    assert report.files_verified == len(registered.files)
    for entry in registered.files:
        assert (tmp_path / "out" / entry.path).read_bytes() == (
            registry.store.path_of(entry.sha256).read_bytes()
        )
    assert there.datasets.verify(dataset.ref).merkle_root == dataset.merkle_root
    there.verify_audit()
    assert there.verify_records()["adapter_versions"] == 1
    # the objects it read are in its own cache now, verified
    assert there.store.root == tmp_path / "other-machine-cache" / registry.registry_id / "objects"


def test_an_object_changed_or_deleted_in_the_bucket_is_refused(
    registered: AdapterVersion,
    registry: Registry,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = _bucket(s3_server)
    weights = next(f for f in registered.files if f.path == "adapter_model.safetensors")
    key = f"{_prefix(registry)}/objects/sha256/{weights.sha256[:2]}/{weights.sha256}"
    original = bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    bucket.put_object(Bucket=BUCKET, Key=key, Body=original[:-1] + bytes([original[-1] ^ 1]))
    there = _other_machine(registry, tmp_path, monkeypatch)
    with pytest.raises(VerificationError, match=r"in the object store \(s3://.*\) does not hash"):
        there.adapters.fetch(registered.ref, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written handed out
    bucket.delete_object(Bucket=BUCKET, Key=key)
    with pytest.raises(VerificationError, match="is missing from the artifact store"):
        there.adapters.verify(registered.ref)
    # the machine that wrote it still holds its verified copy; put back, all is well
    bucket.put_object(Bucket=BUCKET, Key=key, Body=original)
    assert there.adapters.verify(registered.ref).files_verified == len(registered.files)


def test_a_cut_log_is_caught_by_the_checkpoints_in_the_bucket(
    registered: AdapterVersion, registry: Registry
) -> None:
    seq, _ = registry.audit_head()
    sql(registry, f"DELETE FROM audit_events WHERE seq = {seq}")
    sql(registry, f"DELETE FROM audit_checkpoints WHERE seq = {seq}")
    with pytest.raises(
        VerificationError, match=r"audit log truncated: s3://.*/checkpoints/ records a checkpoint"
    ):
        registry.verify_records()


def test_an_edited_checkpoint_object_is_caught(registry: Registry, s3_server: S3Server) -> None:
    bucket = _bucket(s3_server)
    listed = bucket.list_objects_v2(Bucket=BUCKET, Prefix=f"{_prefix(registry)}/checkpoints/")
    first = listed["Contents"][0]["Key"]
    record = json.loads(bucket.get_object(Bucket=BUCKET, Key=first)["Body"].read())
    record["head_hash"] = "f" * 64
    bucket.put_object(Bucket=BUCKET, Key=first, Body=json.dumps(record).encode())
    with pytest.raises(VerificationError, match="signature does not verify"):
        registry.verify_audit()
    bucket.put_object(Bucket=BUCKET, Key=first, Body=b"not json")
    with pytest.raises(
        VerificationError,
        match=r"s3://.*/checkpoints/0+\d+-[0-9a-f]{16}\.json is not a checkpoint record",
    ):
        registry.verify_audit()


def test_a_published_record_is_never_overwritten(registry: Registry) -> None:
    objects = S3Objects(registry.store_address)
    assert objects.create("checkpoints/test-key", b"first")
    assert not objects.create("checkpoints/test-key", b"second")  # If-None-Match refused it
    assert objects.read("checkpoints/test-key") == b"first"


def test_init_refuses_a_used_prefix_a_url_with_credentials_and_a_server_that_is_not_there(
    registry: Registry,
    tmp_path: Path,
    keystore: object,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = new_location("postgresql", tmp_path / "unused", request)
    with pytest.raises(InputError, match="already holds objects; give a new prefix"):
        init_registry(url, registry.store_address, registry.keys)
    with pytest.raises(UsageError, match="holds credentials"):
        init_registry(url, f"s3://key:secret@{BUCKET}/x", registry.keys)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(StorageError, match=r"could not list s3://.*check that the bucket exists"):
        init_registry(url, f"s3://{BUCKET}/fresh", registry.keys)
    monkeypatch.undo()
    assert init_registry(url, f"s3://{BUCKET}/{tmp_path.name}", registry.keys).registry_id


def test_the_command_line_makes_and_uses_an_s3_registry(
    tmp_path: Path, request: pytest.FixtureRequest, s3_server: S3Server
) -> None:
    url = str(new_location("postgresql", tmp_path / "unused", request))
    prefix = s3_server.new_prefix()
    cli = Cli(url, tmp_path / "keys")
    made = cli("init", "--store", prefix)
    assert f"with its store in {prefix}" in made.stdout
    cli("keys", "create", ADMIN, "--role", "admin")
    cli("keys", "create", ENGINEER, "--role", "engineer", actor=ADMIN)
    again = cli("init", "--store", prefix, code=1)
    assert "already a LoRA Ledger registry" in again.stderr
    elsewhere = Cli(tmp_path / "a-directory", tmp_path / "keys")
    wrong = elsewhere("init", "--store", prefix, code=2)
    assert "--store is for a PostgreSQL registry" in wrong.stderr
    assert "verified" in cli("audit", "verify").stdout.lower()


def test_the_dashboard_asks_where_its_accounts_are_kept(registry: Registry) -> None:
    from loraledger.dashboard.accounts import accounts_beside

    with pytest.raises(UsageError, match="is in S3; give the dashboard's accounts file"):
        accounts_beside(registry)  # the cache is no place for them


def test_a_machine_without_credentials_is_told_so(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    # where obstore then asks for keys (an EC2 instance's metadata service): nothing here
    monkeypatch.setenv("AWS_METADATA_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(StorageError) as raised:
        list(S3Objects(f"s3://{BUCKET}/x").keys(""))
    message = str(raised.value)
    assert message.startswith(f"could not list s3://{BUCKET}/x: ") and "\n" not in message
    assert message.endswith(
        "no credentials were found for it: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
        "(or AWS_PROFILE) on this machine"
    )
