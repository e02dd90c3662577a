"""The ``loraledger`` command's shared pieces: global options, error handling, output.

Commands parse their arguments, call one library function and render its result; they
hold no rules of their own. Every :class:`LedgerError` is caught once, here, printed as
one line on stderr (``--verbose`` adds the traceback) and mapped to its exit code.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import BaseModel
from typer._click.exceptions import ClickException, NoArgsIsHelpError  # typer's own click
from typer.core import TyperGroup

from loraledger.errors import LedgerError, StorageError, UsageError
from loraledger.terminal import printable


@dataclass
class Settings:
    """The global options, shared by every command through the click context."""

    registry: Path | str  # a directory, or a postgresql:// URL
    actor: str | None
    keys_dir: Path | None
    verbose: bool
    trust_root: Path | None = None

    def open(self) -> Any:
        """The registry, its identity history to be verified back to its root: the pinned
        one (--trust-root), or the one this machine saw first (`audit verify` says which)."""
        from loraledger.registry import Registry

        return Registry.open(self.registry, keys=self.keystore(), trust_root=self.pinned_root())

    def keystore(self) -> Any:
        """The private keys (--keys-dir), asking for a passphrase on a terminal."""
        from loraledger.registry.keys import KeyStore

        prompt = _prompt_passphrase if sys.stdin.isatty() else None
        return KeyStore(self.keys_dir, prompt=prompt)

    def pinned_root(self) -> Any:
        """The trust root pinned with --trust-root, if any."""
        from loraledger.registry.trust import TrustRoot

        return TrustRoot.read(self.trust_root) if self.trust_root else None


def _prompt_passphrase(text: str) -> str:
    return str(typer.prompt(text, hide_input=True))


class LedgerGroup(TyperGroup):
    """Catches :class:`LedgerError` at one place for every subcommand, and says click's
    usage errors (a bad option value, a missing argument) in one line too."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except ClickException as error:
            _usage_error(error)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            try:
                return super().invoke(ctx)
            except ClickException as error:  # a subcommand's arguments
                _usage_error(error)
            except Exception as error:  # the machine's: disk full, permission denied, ...
                storage = StorageError.of(error)
                if storage is None:
                    raise
                raise storage from error
        except LedgerError as error:
            settings = ctx.find_object(Settings)
            if settings is not None and settings.verbose:
                traceback.print_exc(file=sys.stderr)
            typer.echo(f"error: {printable(str(error))}", err=True)
            ctx.exit(error.exit_code)


def _usage_error(error: ClickException) -> NoReturn:
    """``error`` said as one line naming the command's help, and its exit code (2 for
    usage); a group called with no arguments still shows its help."""
    if isinstance(error, NoArgsIsHelpError):
        raise error
    context = getattr(error, "ctx", None)
    # the command as a user types it (a test runner calls the root "root")
    path = ["loraledger", *context.command_path.split()[1:]] if context is not None else []
    where = f"; see `{' '.join(path)} --help`" if path else ""
    typer.echo(f"error: {printable(error.format_message().rstrip('.'))}{where}", err=True)
    sys.exit(error.exit_code)


def settings(ctx: typer.Context) -> Settings:
    found = ctx.find_object(Settings)
    if found is None:  # pragma: no cover - the root callback always sets it
        raise RuntimeError("global options were not parsed")
    return found


def new_app(help_text: str) -> typer.Typer:
    return typer.Typer(
        help=help_text,
        cls=LedgerGroup,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )


def emit_json(value: Any) -> None:
    """Print ``value`` (pydantic models, lists of them, plain data) as JSON on stdout."""

    def encode(item: Any) -> Any:
        if isinstance(item, BaseModel):
            return item.model_dump(mode="json")
        if isinstance(item, list | tuple):
            return [encode(i) for i in item]
        if isinstance(item, dict):
            return {k: encode(v) for k, v in item.items()}
        return item

    typer.echo(json.dumps(encode(value), indent=2, sort_keys=True))


def emit_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print a table on stdout (wide when piped, so scripts and logs get whole cells)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(*headers)
    for row in rows:  # plain text, never markup; control characters shown escaped
        table.add_row(*(Text(printable(cell)) for cell in row))
    console().print(table)


def console() -> Any:
    from rich.console import Console

    # Piped output (scripts, logs, CI) gets wide tables instead of 80-column wrapping.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover


def parse_moment(at: str | None, option: str = "--at") -> datetime | None:
    """``--at TIME`` (or ``option``) as naive UTC (the registry's clock); None when not
    given. A time without a zone is UTC."""
    if at is None:
        return None
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise UsageError(
            f"{option} {at!r} is not a time; write e.g. 2026-03-03T12:00 (UTC) or "
            "2026-03-03T13:00+01:00"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON for scripts.")
