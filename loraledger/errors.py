"""The one error hierarchy of LoRA Ledger.

Every expected failure raises a subclass of :class:`LedgerError`. Its message is one
line that says what is wrong and what to do about it; the CLI prints exactly that line
and exits with :attr:`LedgerError.exit_code`:

* ``1`` -- refused: a verification failed, a rule or role said no, or the registry's
  state does not allow it (the class says which);
* ``2`` -- bad usage or bad input (nothing was written);
* ``74`` -- the machine failed a read or write (disk full, permission denied, a path of
  the wrong kind; sysexits' ``EX_IOERR``); the message says what was written, if anything;
* ``75`` -- try again: another writer changed or held the registry meanwhile (sysexits'
  ``EX_TEMPFAIL``); nothing was written.

A caller (a CI job, the dashboard) branches on the class, or on the exit code; the
table of both is in docs/cli.md, "Exit codes and errors".
"""

from __future__ import annotations

from pathlib import Path

EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2
EXIT_STORAGE = 74
EXIT_TRY_AGAIN = 75


class LedgerWarning(UserWarning):
    """Something the user should know that does not stop the command (a config of a newer
    format loaded without the keys it does not know): the CLI prints it as one
    ``warning:`` line."""


class LedgerError(Exception):
    """Base of every expected LoRA Ledger failure."""

    exit_code: int = EXIT_REFUSED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# --- bad input (exit 2) -------------------------------------------------------------


class InputError(LedgerError):
    """Input that cannot be accepted: a file, a line in it, a field, a name or a flag.

    ``path``, ``line`` and ``field`` locate the problem when it has a location; the
    message always names it too, so the one printed line is enough.
    """

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
            if field is not None:
                where += f": field '{field}'"
            where += ": "
        elif field is not None:
            where = f"field '{field}': "
        super().__init__(where + message)
        self.path = Path(path) if path is not None else None
        self.line = line
        self.field = field


class NotFound(InputError):
    """A named thing (identity, adapter version, event) does not exist."""


class NotARegistry(InputError):
    """The registry directory is missing or is not a LoRA Ledger registry."""


class SchemaTooNew(InputError):
    """The registry was written by a newer LoRA Ledger than this one."""


class SuiteError(InputError, ValueError):
    """A suite's sample or scoring rule cannot be used (an unknown rule, a bad pattern).
    Raised from inside lm-eval's scoring hook, hence also a ``ValueError``."""


class UsageError(InputError):
    """A command was called without something it needs (e.g. no acting identity)."""


# --- refused or failed (exit 1) -----------------------------------------------------


class VerificationError(LedgerError):
    """Bytes, a signature or the audit chain do not verify. Fail closed."""


class PermissionDenied(LedgerError):
    """The acting identity may not do this (role, revoked key, separation of duties)."""


class Conflict(LedgerError):
    """The operation contradicts the registry's state; each meaning is a subclass."""


class AlreadyExists(Conflict):
    """What would be created exists already (an identity, a registry, a user, a file)."""


class NothingDeployed(Conflict):
    """The environment runs nothing (yet, or at the moment asked about)."""


class WrongBase(Conflict):
    """An adapter was asked to run on a base other than the one it was made for."""


class GateRefused(Conflict):
    """A release rule said no: the gate fails, the evidence fails, or the same person
    decided the same thing on the same evidence. The message names the rule."""


class PolicyNotInForce(Conflict):
    """A decision was asked under a release policy that is not the registry's policy in
    force, or the registry has none in force yet (an admin sets one: `policy set`)."""


class ConcurrentChange(Conflict):
    """Another writer changed the same thing meanwhile; nothing was written. Look at
    the new state, then try again."""

    exit_code = EXIT_TRY_AGAIN


class LockTimeout(LedgerError):
    """Another process held the registry database for longer than the lock timeout;
    nothing was written. Try again when it is done."""

    exit_code = EXIT_TRY_AGAIN


class EvaluationFailed(LedgerError):
    """lm-eval itself failed while running a suite (its reason is in the message); the
    run is recorded as failed with no results."""


class EngineError(LedgerError):
    """A serving engine (llama.cpp) could not be fetched, built, run as a converter or
    started; the message names the step and the log that says more."""


class StorageError(LedgerError):
    """The machine failed a read or a write: the disk is full, a permission is missing,
    a path is of the wrong kind. Said in one line with the path; what was written, if
    anything, is said too (a change either committed whole or left nothing)."""

    exit_code = EXIT_STORAGE

    @classmethod
    def from_os_error(cls, error: OSError, doing: str = "") -> StorageError:
        import errno

        where = f" ({error.filename})" if error.filename else ""
        if error.filename and error.filename2:  # a copy or a rename: both ends
            where = f" ({error.filename} -> {error.filename2})"
        reason = error.strerror or str(error) or type(error).__name__
        advice = {
            errno.ENOSPC: "free space and run the command again",
            errno.EDQUOT: "free space (a quota is exhausted) and run the command again",
            errno.EACCES: "give this user access to it, or use another path",
            errno.EPERM: "give this user access to it, or use another path",
            errno.EROFS: "use a writable location",
            errno.EISDIR: "pass a file, not a directory",
            errno.ENOTDIR: "pass a directory, not a file",
        }.get(error.errno or 0, "check the path and the machine, then run the command again")
        what = f" while {doing}" if doing else ""
        return cls(f"{reason}{where}{what}; {advice}")

    @classmethod
    def of(cls, error: BaseException) -> StorageError | None:
        """``error`` as one StorageError when it is the machine's (an ``OSError``) or
        DuckDB's own failure to read or write the database file (its I/O errors, and its
        refusal to go on after one); None for anything else, which keeps its traceback
        (a programming error). The one mapping the CLI and the dashboard share."""
        if isinstance(error, OSError):
            return cls.from_os_error(error)
        import duckdb

        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        after = (
            "(a change commits whole or not at all: `loraledger audit log --limit 3` shows "
            "whether it did)"
        )
        if isinstance(error, duckdb.IOException):
            return cls(
                f"the registry database could not be read or written ({text}); free space or "
                f"fix the permissions, then run the command again {after}"
            )
        if isinstance(error, duckdb.Error) and "invalidated" in text:
            return cls(
                f"the registry database stopped after a failed write ({text}); free space, "
                f"then run the command again {after}"
            )
        return None


class SigningKeyError(LedgerError):
    """A private key is missing, unreadable, encrypted without a passphrase, or wrong."""
