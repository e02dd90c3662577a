"""The one error hierarchy: every class means one thing, says so, maps to a documented
exit code, and reaches the user as one line with that code."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from loraledger.registry import Registry

import loraledger.errors as errors
from loraledger.errors import (
    EXIT_BAD_INPUT,
    EXIT_REFUSED,
    EXIT_STORAGE,
    EXIT_TRY_AGAIN,
    LedgerError,
)
from tests.cli.conftest import Cli, cli  # noqa: F401  (fixture)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
CLASSES = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, LedgerError)]
HOLD = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_class_is_documented_with_its_exit_code(cls: type[LedgerError]) -> None:
    assert cls.__doc__ and cls.__doc__.strip() != (cls.__mro__[1].__doc__ or "").strip()
    assert cls.exit_code in (EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_STORAGE, EXIT_TRY_AGAIN)
    row = next((ln for ln in DOCS.read_text().splitlines() if f"`{cls.__name__}`" in ln), None)
    assert row is not None, f"docs/cli.md has no row for {cls.__name__}"
    assert row.startswith(f"| {cls.exit_code} |"), row


def test_the_codes_a_ci_job_branches_on() -> None:
    codes = {c.__name__: c.exit_code for c in CLASSES}
    refused = ("VerificationError", "PermissionDenied", "GateRefused", "EvaluationFailed")
    assert {codes[n] for n in refused} == {1}
    assert {codes[n] for n in ("InputError", "NotFound", "UsageError", "SuiteError")} == {2}
    assert {codes[n] for n in ("ConcurrentChange", "LockTimeout")} == {75}


def test_a_held_lock_exits_75_with_one_line(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("init")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(Registry.open(tmp_path / "reg").db.path), "30"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        cli.env["LORALEDGER_LOCK_TIMEOUT"] = "0.5"
        result = cli("keys", "list", code=75)
    finally:
        holder.kill()
        holder.wait()
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and f"held by PID {holder.pid}" in line
    assert "Traceback" not in result.stdout + result.stderr


def test_a_lost_race_to_deploy_is_try_again(registry: Registry) -> None:
    from tests.conftest import small_adapter
    from tests.policies.helpers import deploy

    version = registry.adapters.register(small_adapter(registry.root.parent / "a"), "x",
                                         actor="eve")  # fmt: skip
    deploy(registry, "qa", version.ref)
    with pytest.raises(errors.ConcurrentChange, match="changed while this ran") as raised:
        deploy(registry, "qa", version.ref, after_seq=0)  # as if #1 had not happened yet
    assert raised.value.exit_code == 75
