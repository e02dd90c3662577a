"""What every page shares: the configuration, the signed-in user, the registry, and one
way to call the library.

Pages hold no rules. Each read or action is a library call made through :func:`read` or
:func:`act`, as the signed-in user's registry identity (the library checks the role and
signs with that identity's key). A wait for the registry's lock shows only a spinner
(Streamlit shows one after half a second), and a :class:`LedgerError` shows as its one-line
message: never a raw DuckDB error, never a traceback.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import streamlit as st
from loraledger.policies.release import LoadedPolicy, resolve_policy
from loraledger.registry import Identity, Registry, Role
from loraledger.registry.keys import KEYS_DIR_ENV, KeyStore
from loraledger.registry.permissions import Action, allowed, only_reads
from loraledger.registry.registry import default_registry_path

from loraledger.errors import LedgerError, LockTimeout, StorageError, VerificationError

from .accounts import ACCOUNTS_FILE, accounts_beside

ACCOUNTS_ENV = "LORALEDGER_DASHBOARD_ACCOUNTS"
POLICY_ENV = "LORALEDGER_DASHBOARD_POLICY"
PAGE_SIZE = 25
T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    """Set by ``loraledger dashboard`` through the environment of the Streamlit server."""

    registry: Path | str  # a directory, or a postgresql:// URL
    keys_dir: Path | None
    accounts: Path | None  # None: beside the registry's files (see accounts_file)
    policy: Path | None

    @classmethod
    def from_env(cls) -> Config:
        keys = os.environ.get(KEYS_DIR_ENV)
        policy = os.environ.get(POLICY_ENV)
        accounts = os.environ.get(ACCOUNTS_ENV)
        return cls(
            registry=default_registry_path(),
            keys_dir=Path(keys) if keys else None,
            accounts=Path(accounts) if accounts else None,
            policy=Path(policy) if policy else None,
        )

    def accounts_file(self) -> Path:
        """The sign-in accounts: as set, or beside the registry's files (its directory,
        or a PostgreSQL registry's store, which only the registry knows: opened here, at
        sign-in, not on every page run)."""
        if self.accounts is not None:
            return self.accounts
        if isinstance(self.registry, Path):
            return self.registry / ACCOUNTS_FILE
        return accounts_beside(Registry.open(self.registry))


@dataclass(frozen=True)
class User:
    """The signed-in person: their dashboard user name and registry identity."""

    username: str
    display_name: str
    identity: str
    role: Role

    @property
    def may_decide(self) -> bool:
        """Whether decision forms are shown: to every role the permissions table lets
        change anything. The library judges each decision (an engineer's approval is
        refused and audited there); a role that only reads sees no form."""
        return not only_reads(self.role)

    @property
    def may_release(self) -> bool:
        """Whether promotion and rollback forms are shown (the table's roles)."""
        return allowed(self.role, Action.PROMOTE) and allowed(self.role, Action.ROLLBACK)


def config() -> Config:
    return Config.from_env()


def user() -> User:
    found = st.session_state.get("ledger_user")
    if not isinstance(found, User):  # pragma: no cover - run_page checked before render
        st.stop()
    return found


SIGN_IN_FIRST = "Sign in first: open the dashboard's address."


def run_page(render: Callable[[], None]) -> None:
    """Every page script's one statement: ``render`` runs only for a signed-in user whose
    registry identity is still active, read again on every run (so a revocation takes
    effect on the next click). Anything else shows one line and stops the run: a page
    script run without ``app.py``'s sign-in shows no registry data."""
    current = st.session_state.get("ledger_user")
    if not isinstance(current, User):
        st.warning(SIGN_IN_FIRST)
        st.stop()
    identity = active_identity(current.identity)
    if identity.role is not current.role:  # the registry's role, never a remembered one
        st.session_state["ledger_user"] = replace(current, role=identity.role)
    render()


def active_identity(name: str) -> Identity:
    """``name``'s registry identity if it is active; otherwise the page says so, forgets
    the signed-in user and stops."""
    identity = read(lambda: registry().identities.get(name))
    if identity.status != "active":
        st.session_state.pop("ledger_user", None)
        st.error(
            f"Your registry identity {identity.name!r} is {identity.status}; ask an admin "
            "for a new one."
        )
        st.stop()
    return identity


def registry(passphrase: str | None = None) -> Registry:
    """The registry, opened for this run (it holds no connection between calls)."""
    settings = config()
    prompt = (lambda _text: passphrase) if passphrase else None
    return Registry.open(settings.registry, keys=KeyStore(settings.keys_dir, prompt=prompt))


def policy() -> LoadedPolicy:
    """The registry's policy in force (``--policy FILE``: that file, as a dry run when it
    is not the one in force; approvals and promotions refuse it then)."""
    return resolve_policy(registry(), config().policy, deciding=False)


def read(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A library read; on failure the page stops with the error's own message."""
    try:
        with st.spinner("Waiting for the registry…"):
            return call(*args, **kwargs)
    except LedgerError as error:
        stop_with(error)
    except Exception as error:  # the machine's fault (disk full, ...): one line too
        stop_with(_storage(error))


def stop_with(error: LedgerError) -> NoReturn:
    """Show ``error`` as its one line (a busy registry as a warning) and stop the page."""
    if isinstance(error, LockTimeout):
        st.warning(f"The registry is busy: {error}")
    else:
        st.error(str(error))
    st.stop()
    raise AssertionError("unreachable")  # pragma: no cover - st.stop raises


def check(call: Callable[..., T], *args: Any, failure: str, busy: str) -> T | None:
    """A verification: its failure is the finding, shown in red as ``failure: reason``
    (and None returned); any other error is handled as in :func:`read`."""
    try:
        with st.spinner(busy):
            return call(*args)
    except VerificationError as error:
        st.error(f"{failure}: {error}")
        return None
    except LedgerError as error:
        stop_with(error)
    except Exception as error:
        stop_with(_storage(error))


def act(call: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """A library action as the signed-in user; a refusal or failure is shown (with the
    library's reason) and None returned, so the page goes on rendering."""
    try:
        with st.spinner("Working…"):
            return call(*args, **kwargs)
    except LedgerError as error:
        st.error(f"Refused: {error}")
        return None
    except Exception as error:
        st.error(f"Failed: {_storage(error)}")
        return None


def _storage(error: Exception) -> StorageError:
    """The machine's fault as one line; anything else is a bug and keeps its traceback."""
    storage = StorageError.of(error)
    if storage is None:
        raise error
    return storage


def flash(message: str) -> None:
    """Show ``message`` at the top of the page after a rerun (which re-reads what the
    action changed)."""
    st.session_state["ledger_flash"] = message
    st.rerun()


def show_flash() -> None:
    message = st.session_state.pop("ledger_flash", None)
    if message:
        st.success(message)


def page_controls(total: int, key: str, page_size: int = PAGE_SIZE) -> tuple[int, int]:
    """A page picker for ``total`` rows; returns (offset, limit) for the SQL."""
    pages = max(1, -(-total // page_size))
    if pages == 1:
        return 0, page_size
    page = st.number_input(
        f"Page (of {pages}, {total} rows)", min_value=1, max_value=pages, value=1, key=key
    )
    return (int(page) - 1) * page_size, page_size


def short(digest: str | None, width: int = 12) -> str:
    return f"{digest[:width]}…" if digest else "—"


def ref_picker(label: str, key: str, default: str = "") -> str:
    """A NAME@vN text field (pre-filled from ``?ref=`` in the address)."""
    initial = st.query_params.get("ref", default)
    return st.text_input(label, value=initial, key=key, placeholder="name@v1").strip()


def page_link(page: str, label: str, **query: str) -> None:
    """A link to another page of the app with ``query`` in its address. Outside the app's
    navigation (one page run alone, as AppTest does) it is a plain link to the page's
    address."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(page, label=label, query_params=query)
    except StreamlitAPIException:
        address = Path(page).stem + "?" + urllib.parse.urlencode(query)
        st.markdown(f"[{label}]({address})")


def environment_picker(key: str, label: str = "Environment") -> str:
    """One of the policy's environments (pre-selected from ``?env=`` in the address)."""
    names = list(policy().policy.environments)
    wanted = st.query_params.get("env")
    index = names.index(wanted) if wanted in names else 0
    return str(st.selectbox(label, names, index=index, key=key))
