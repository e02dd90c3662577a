"""The `loraledger` command run in-process against one registry, as the CLI tests use it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from loraledger.cli import app


class Cli:
    """Runs `loraledger ARGS` on the registry at `registry` and asserts its exit code."""

    def __init__(self, registry: Path | str, keys: Path) -> None:
        self.runner = CliRunner()
        self.env = {
            "LORALEDGER_REGISTRY": str(registry),
            "LORALEDGER_KEYS_DIR": str(keys),
            "LORALEDGER_ACTOR": None,
        }

    def __call__(
        self, *args: str, code: int = 0, actor: str | None = None, stdin: str | None = None
    ) -> Result:
        argv = (["--as", actor] if actor else []) + list(args)
        result = self.runner.invoke(app, argv, env=self.env, input=stdin)
        assert result.exit_code == code, (argv, result.stdout, result.stderr, result.exception)
        return result


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "reg", tmp_path / "keys")


@pytest.fixture
def ready(cli: Cli) -> Cli:
    """A new registry with an admin (alice) and an engineer (eve)."""
    cli("init")
    cli("keys", "create", "alice", "--role", "admin")
    cli("keys", "create", "eve", "--role", "engineer", actor="alice")
    return cli
