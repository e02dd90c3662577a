"""A real PostgreSQL server for the tests and benchmarks, started and stopped by them.

Debian's ``postgresql`` package (``make test`` installs it when it is missing, as it does
Chromium) puts its programs in ``/usr/lib/postgresql/<major>/bin``. A server gets a data
directory of its own under a temporary directory (``initdb``; as root, run as the
``postgres`` user, since ``initdb`` refuses root), listens on 127.0.0.1 on a free port and
on a Unix socket in that directory, and is stopped (``pg_ctl stop -m fast``) and deleted
afterwards. Its superuser ``loraledger`` logs in over TCP with a password (SCRAM), as a
team's registry would: the tests pass it the way users do, through ``PGPASSWORD`` or a
``.pgpass`` file, never in the URL.

Speed settings for throwaway servers only (``fsync=off``, ``synchronous_commit=off``,
``full_page_writes=off``): a crash loses the server, which the test deletes anyway.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "loraledger"
PASSWORD = "test-only-password"  # a throwaway server's, on 127.0.0.1 only
SERVER_USER = "postgres"  # who runs the server when the tests run as root


SERVERS: list[Server] = []  # the session's running server (tests/conftest.py)


class Unavailable(RuntimeError):
    """No PostgreSQL server programs on this machine (say so when skipping)."""


def binaries() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` with ``initdb`` and ``pg_ctl``."""
    found = [
        d / "bin"
        for d in Path("/usr/lib/postgresql").glob("*")
        if (d / "bin" / "initdb").is_file() and (d / "bin" / "pg_ctl").is_file()
    ]
    if not found:
        raise Unavailable(
            "no PostgreSQL server programs in /usr/lib/postgresql/*/bin; install Debian's "
            "`postgresql` package (`make test` does, when it runs as root with apt-get)"
        )
    return max(found, key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running server: its port, socket directory and the URL of a database on it."""

    root: Path
    port: int
    bin: Path

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        """``postgresql://user@127.0.0.1:PORT/database`` -- no password in it."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def environ(self) -> dict[str, str]:
        """The environment a client needs beside the URL: the password, as users pass it."""
        return {**os.environ, "PGPASSWORD": PASSWORD}

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` through ``psql`` as the superuser; its output, tuples only."""
        done = subprocess.run(
            [str(self.bin / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
             "-d", self.url(database), "-c", sql],
            env=self.environ(), capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def create_database(self, name: str) -> str:
        """A fresh, empty database; its URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", SERVER_USER, "--", *command]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(_as_server_user(command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr or done.stdout}")


@contextmanager
def running_server(parent: Path | None = None) -> Iterator[Server]:
    """Start a server in a new temporary directory; stop it and delete it afterwards."""
    bin_dir = binaries()
    root = Path(tempfile.mkdtemp(prefix="loraledger-pg-", dir=parent))
    data, sockets = root / "data", root / "socket"
    sockets.mkdir()
    password_file = root / "pwfile"
    password_file.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:  # the server runs as `postgres`: it must own what it writes
        owner = pwd.getpwnam(SERVER_USER)
        for path in (root, sockets, password_file):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    server: Server | None = None
    try:
        _run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-E", "UTF8",
             "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
             f"--pwfile={password_file}"],
            "initdb",
        )  # fmt: skip
        for attempt in range(3):  # another process may take the port between probe and bind
            port = free_port()
            options = (
                f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
            )
            try:
                _run(
                    [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
                     "-l", str(root / "server.log"), "-w", "-t", "60", "start"],
                    "pg_ctl start",
                )  # fmt: skip
            except RuntimeError:
                if attempt == 2:
                    log = root / "server.log"
                    raise RuntimeError(
                        "the PostgreSQL test server did not start: "
                        + (log.read_text()[-2000:] if log.exists() else "no log")
                    ) from None
                continue
            server = Server(root=root, port=port, bin=bin_dir)
            break
        assert server is not None
        yield server
    finally:
        if server is not None:
            subprocess.run(
                _as_server_user(
                    [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
                ),
                capture_output=True,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


__all__ = [
    "PASSWORD",
    "SERVERS",
    "SUPERUSER",
    "Server",
    "Unavailable",
    "binaries",
    "running_server",
]
