"""The dashboard's sign-in accounts: user names with bcrypt-hashed passwords, each mapped
to a registry identity (whose role and key the library then uses).

The file is YAML beside the registry (``REGISTRY/dashboard-accounts.yaml`` unless
``--accounts`` names another), validated on load, written atomically, never holding a
password in clear. Passwords are hashed by ``streamlit-authenticator``'s ``Hasher``
(bcrypt), the library that checks them at sign-in. A user may also carry the e-mail
address an OpenID Connect provider reports, when Streamlit's own ``st.login`` is
configured (``[auth]`` in ``.streamlit/secrets.toml``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from loraledger.atomic import write_atomically
from loraledger.errors import AlreadyExists, NotFound, UsageError

if TYPE_CHECKING:
    from loraledger.registry import Registry
from loraledger.yamlfile import load_validated

ACCOUNTS_FILE = "dashboard-accounts.yaml"


def accounts_beside(registry: Registry) -> Path:
    """The default accounts file: beside the registry's files (its directory, or a
    PostgreSQL registry's store directory). A store in S3 has no directory on the
    dashboard's host that outlives a cache: its file is named with ``--accounts``."""
    if registry.store.objects is not None:
        raise UsageError(
            f"the store of {registry.location} is in S3; give the dashboard's accounts file "
            "with --accounts FILE (a file on the dashboard's host)"
        )
    return registry.root / ACCOUNTS_FILE


_USER = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


class Account(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    identity: str = Field(description="the registry identity this user acts as")
    name: str = Field(description="shown in the dashboard")
    password: str = Field(pattern=r"^\$2[aby]\$\d\d\$.{53}$", description="bcrypt hash")
    email: str | None = Field(default=None, description="for OpenID Connect sign-in")


class AccountsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(default=1, ge=1, le=1)
    cookie_key: str = Field(min_length=32, description="signs the sign-in cookie")
    cookie_expiry_days: float = Field(default=0.5, gt=0, le=30)
    users: dict[str, Account] = Field(default_factory=dict)


@dataclass(frozen=True)
class Accounts:
    path: Path
    data: AccountsFile

    def credentials(self) -> dict[str, Any]:
        """In the form ``streamlit_authenticator.Authenticate`` takes."""
        return {
            "usernames": {
                user: {"name": a.name, "password": a.password, "email": a.email or ""}
                for user, a in self.data.users.items()
            }
        }

    def identity_of(self, user: str) -> str:
        try:
            return self.data.users[user].identity
        except KeyError:
            raise NotFound(f"no dashboard user {user!r} in {self.path}") from None

    def user_with_email(self, email: str) -> str | None:
        for user, account in self.data.users.items():
            if account.email and account.email.lower() == email.lower():
                return user
        return None


def load_accounts(path: Path) -> Accounts:
    if not path.is_file():
        raise NotFound(
            f"no dashboard accounts at {path}; add one with `loraledger dashboard add-user "
            "USER --identity NAME`"
        )
    data, _digest, _text = load_validated(path, AccountsFile, what="dashboard accounts")
    return Accounts(path, data)


def hash_password(password: str) -> str:
    """bcrypt, as ``streamlit_authenticator.Hasher.hash`` does (it checks these hashes at
    sign-in); importing that module starts Streamlit, so the CLI calls bcrypt itself."""
    import bcrypt

    if len(password) < 8:
        raise UsageError("the password is too short; use at least 8 characters")
    if len(password.encode("utf-8")) > 72:
        raise UsageError("the password is too long for bcrypt; use at most 72 bytes")
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


def add_user(
    path: Path,
    user: str,
    *,
    identity: str,
    password: str,
    name: str | None = None,
    email: str | None = None,
    replace: bool = False,
) -> Accounts:
    """Add (or with ``replace``, reset) a user; creates the file with a new cookie key."""
    if not _USER.fullmatch(user):
        raise UsageError(
            f"user name {user!r}: use lowercase letters, digits, '.', '_' or '-' "
            "(starting with a letter)"
        )
    current = (
        load_accounts(path).data
        if path.exists()
        else AccountsFile(cookie_key=secrets.token_hex(32))
    )
    if user in current.users and not replace:
        raise AlreadyExists(f"dashboard user {user!r} already exists in {path}; pass --replace")
    account = Account(
        identity=identity, name=name or user, password=hash_password(password), email=email
    )
    updated = current.model_copy(update={"users": {**current.users, user: account}})
    text = yaml.safe_dump(updated.model_dump(mode="json", exclude_none=True), sort_keys=False)
    write_atomically(path, text.encode("utf-8"), mode=0o600)
    return Accounts(path, updated)
