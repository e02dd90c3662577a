"""Fixtures that build real things: a registry directory, real EC keys, real adapter
directories in the PEFT layout. Nothing of LoRA Ledger's own is mocked."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from loraledger.registry import AdapterVersion, Registry, Role
from loraledger.registry.keys import KeyStore
from loraledger.registry.synthetic import write_lora_adapter

ADMIN, ENGINEER, REVIEWER, AUDITOR = "alice", "eve", "rita", "otto"
# The suite's own cache (converted bases, the tiny test base, compute-dtype decisions),
# never the user's: a decision cached on the user's machine must not steer a test.
TEST_CACHE = Path(__file__).resolve().parents[1] / ".pytest_cache" / "loraledger"
os.environ["LORALEDGER_CACHE"] = str(TEST_CACHE)
# Registries built outside a test (module fixtures) remember their roots here too.
os.environ["LORALEDGER_KNOWN_ROOTS"] = str(TEST_CACHE / "known-roots.json")


def _share_the_cores() -> None:
    """Under pytest-xdist each worker gets its share of the cores for torch's (OpenMP)
    threads, and so do the processes it starts: two workers each running torch on every
    core of a 2-core machine were measured a third slower than one thread each (150
    1024x1024 matmuls: 6.8 s each against 4.6 s). Set before torch is imported (torch
    reads OMP_NUM_THREADS once); a value already in the environment is kept."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            if var not in os.environ:
                os.environ[var] = threads
                SHARED_THREADS.append(var)


SHARED_THREADS: list[str] = []  # the variables set here (a process that runs mostly alone,
# like the demo, is started without them: it gets every core)
_share_the_cores()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own keys, registry or actor."""
    for var in (
        "LORALEDGER_REGISTRY",
        "LORALEDGER_ACTOR",
        "LORALEDGER_PASSPHRASE",
        "LORALEDGER_LOCK_TIMEOUT",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LORALEDGER_KEYS_DIR", str(tmp_path / "keys"))
    # the roots trusted on first use are this test's, not the developer's
    monkeypatch.setenv("LORALEDGER_KNOWN_ROOTS", str(tmp_path / "known-roots.json"))
    monkeypatch.delenv("LORALEDGER_TRUST_ROOT", raising=False)
    # objects fetched from an S3 store are cached under this test's directory
    monkeypatch.setenv("LORALEDGER_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def keystore(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys")


# The registry backends the tests of a folder whose conftest.py asks for them
# (``backend = backends_fixture()``) run on: the embedded DuckDB directory and a
# PostgreSQL database on the session's own server (tests/postgres.py) with its store in a
# directory. LORALEDGER_TEST_BACKENDS=duckdb narrows a local run. Elsewhere: DuckDB. A
# module may also ask for "postgresql+s3": its store in the session's S3 server
# (tests/s3.py).
BACKENDS = tuple(os.environ.get("LORALEDGER_TEST_BACKENDS", "duckdb,postgresql").split(","))


@pytest.fixture(scope="module")
def backend() -> str:
    return "duckdb"


def backends_fixture() -> object:
    """A ``backend`` fixture that runs each test on every one of :data:`BACKENDS` (module
    scoped, so a module's shared registries are built once a backend)."""

    @pytest.fixture(scope="module", params=BACKENDS)
    def backend(request: pytest.FixtureRequest) -> str:
        return str(request.param)

    return backend


def new_location(backend: str, directory: Path, request: pytest.FixtureRequest) -> Path | str:
    """Where a new registry of ``backend`` goes: ``directory``, or a new database's URL
    on the session's server (its password in PGPASSWORD, as users give it)."""
    if backend == "duckdb":
        return directory
    server = request.getfixturevalue("postgres_server")
    return str(server.create_database(f"reg_{uuid.uuid4().hex[:12]}"))


def new_store(backend: str, directory: Path, request: pytest.FixtureRequest) -> Path | str:
    """Where a new registry of ``backend`` keeps its files: ``directory``, or a new prefix
    in the session's S3 server."""
    if backend.endswith("+s3"):
        return str(request.getfixturevalue("s3_server").new_prefix())
    return directory


def clone_registry(registry: Registry, directory: Path) -> Registry:
    """A private copy of ``registry`` (its files in ``directory``), for a test that
    writes: a directory copied, or a PostgreSQL database made from it as a template with
    its store copied and the copy's store recorded."""
    shutil.copytree(registry.root, directory)
    return Registry.open(cloned_address(registry.address, directory), keys=registry.keys)


def cloned_address(address: Path | str, files: Path) -> Path | str:
    """The address of a copy of the registry at ``address`` whose files were already
    copied to ``files``: that directory, or a new database cloned from ``address``'s."""
    if isinstance(address, Path):
        return files
    from tests.postgres import SERVERS

    server = SERVERS[-1]
    name = f"reg_{uuid.uuid4().hex[:12]}"
    server.psql(f'CREATE DATABASE "{name}" TEMPLATE "{address.rsplit("/", 1)[1]}"')
    server.psql(f"UPDATE registry_meta SET value = '{files.absolute()}' WHERE key = 'store'", name)
    return server.url(name)


@pytest.fixture(scope="session")
def built_eval_registries() -> dict[str, Registry]:
    """The evaluation registry of each backend (tests/harness/conftest.py), built once a
    session on first use and never handed out: each module gets a copy of its own."""
    return {}


@pytest.fixture
def registry_location(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    """Where this test's registry lives."""
    return new_location(backend, tmp_path / "reg", request)


def init_registry(location: Path | str, files: Path | str, keys: KeyStore) -> Registry:
    """A new registry at ``location``; a PostgreSQL one keeps its files in ``files`` (a
    directory or an s3:// prefix)."""
    if isinstance(location, str):
        return Registry.init(location, store=files, keys=keys)
    return Registry.init(location, keys=keys)


@pytest.fixture
def empty_registry(
    backend: str,
    registry_location: Path | str,
    tmp_path: Path,
    keystore: KeyStore,
    request: pytest.FixtureRequest,
) -> Registry:
    return init_registry(registry_location, new_store(backend, tmp_path / "reg", request), keystore)


@pytest.fixture
def registry(empty_registry: Registry) -> Registry:
    """A registry with an admin, an engineer, a reviewer and an auditor."""
    reg = empty_registry
    reg.identities.create(ADMIN, Role.ADMIN, actor=None)
    reg.identities.create(ENGINEER, Role.ENGINEER, actor=ADMIN)
    reg.identities.create(REVIEWER, Role.REVIEWER, actor=ADMIN)
    reg.identities.create(AUDITOR, Role.AUDITOR, actor=ADMIN)
    return reg


def small_adapter(directory: Path, seed: int = 0) -> Path:
    return write_lora_adapter(directory, hidden=32, layers=2, r=4, seed=seed)


@pytest.fixture
def adapter_dir(tmp_path: Path) -> Path:
    return small_adapter(tmp_path / "adapter")


@pytest.fixture
def registered(registry: Registry, adapter_dir: Path) -> AdapterVersion:
    return registry.adapters.register(adapter_dir, "bank-support", actor=ENGINEER)


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture
def no_scratch_left(registry: Registry) -> Iterator[None]:
    yield
    leftovers = list(registry.store.tmp.iterdir()) if registry.store.tmp.exists() else []
    assert leftovers == [], f"staging files left behind: {leftovers}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[object]:
    """An S3-compatible server for this test session (moto's server mode, tests/s3.py),
    its address and credentials in the AWS_* variables every S3 client reads."""
    from tests.s3 import running_s3

    with running_s3() as server:
        os.environ.update(server.environment)
        yield server
        for name in server.environment:
            os.environ.pop(name, None)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A real PostgreSQL server for this test session (tests/postgres.py), stopped at its
    end; skipped, saying why, only where the server programs are not installed."""
    from tests.postgres import PASSWORD, SERVERS, Unavailable, running_server

    try:
        with running_server() as server:
            os.environ["PGPASSWORD"] = PASSWORD  # as users give it: never in the URL
            SERVERS.append(server)
            yield server
            SERVERS.remove(server)
    except Unavailable as missing:
        pytest.skip(str(missing))
