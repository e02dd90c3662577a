"""Identities: who may act on the registry, with which role and which public key.

The first identity of a registry must be an admin and acts as itself; after that only
an admin creates or revokes identities. Revoking never deletes: the row keeps the key,
the time, who revoked it and why, and every signature made with a revoked key stops
verifying.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loraledger.errors import (
    AlreadyExists,
    Conflict,
    InputError,
    NotFound,
    PermissionDenied,
    UsageError,
)

from .audit import utcnow
from .db import Connection
from .keys import SigningKey
from .models import Identity, IdentityStatus, Role
from .permissions import Action
from .refs import validate_name

if TYPE_CHECKING:
    from .registry import Registry

_COLUMNS = (
    "name, role, public_key_pem, key_fingerprint, status, created_at, created_by, "
    "revoked_at, revoked_by, revoke_reason"
)


def _identity(row: tuple[Any, ...]) -> Identity:
    return Identity(
        name=row[0],
        role=Role(row[1]),
        public_key_pem=row[2],
        key_fingerprint=row[3],
        status=IdentityStatus(row[4]),
        created_at=row[5],
        created_by=row[6],
        revoked_at=row[7],
        revoked_by=row[8],
        revoke_reason=row[9],
    )


class Identities:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    # --- reading ----------------------------------------------------------------------

    def list(self) -> list[Identity]:
        with self._registry.db.read() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM identities ORDER BY name").fetchall()
        return [_identity(r) for r in rows]

    def get(self, name: str) -> Identity:
        def lookup() -> Identity:
            with self._registry.db.read() as conn:
                return self.get_in(conn, name)

        return self._registry.db.memo(("identity", name), lookup)

    def get_in(self, conn: Connection, name: str) -> Identity:
        row = conn.execute(f"SELECT {_COLUMNS} FROM identities WHERE name = ?", [name]).fetchone()
        if row is None:
            raise NotFound(
                f"unknown identity {name!r}; see `loraledger keys list` for the registered ones"
            )
        return _identity(row)

    def public_keys(self, conn: Connection) -> dict[str, str]:
        """Every identity's public key, revoked ones included (for old signatures)."""
        return dict(conn.execute("SELECT name, public_key_pem FROM identities").fetchall())

    # --- changing ---------------------------------------------------------------------

    def create(
        self,
        name: str,
        role: Role,
        *,
        actor: str | None,
        passphrase: bytes | None = None,
        reuse_key: bool = False,
    ) -> Identity:
        """Create identity ``name`` with a new key pair (or its existing key file).

        With no identity in the registry yet, ``name`` bootstraps it: it must be an admin
        and acts as itself. Otherwise ``actor`` must be an active admin.
        """
        validate_name(name, what="identity name")
        registry = self._registry
        with registry.db.read() as conn:
            empty = conn.execute("SELECT count(*) FROM identities").fetchone() == (0,)
            taken = conn.execute("SELECT 1 FROM identities WHERE name = ?", [name]).fetchone()
        if taken:
            raise AlreadyExists(f"identity {name!r} already exists; choose another name")
        if empty:
            if role is not Role.ADMIN:
                raise InputError(
                    f"the first identity of a registry must be an admin; run `loraledger keys "
                    f"create {name} --role admin` first"
                )
            if actor not in (None, name):
                raise UsageError(
                    f"the registry has no identities yet, so {actor!r} cannot act; create the "
                    "first admin without --as"
                )
            actor_key = None
        else:
            actor_key = registry.act_as(actor, Action.IDENTITY_CREATE)

        created_file = not (reuse_key and registry.keys.path_for(name).exists())
        key: SigningKey = (
            registry.keys.create(name, passphrase)
            if created_file
            else registry.keys.load(name, passphrase)
        )
        signer = actor_key or key
        try:
            with registry.change(
                signer, Action.IDENTITY_CREATE, bootstrap=actor_key is None
            ) as change:
                if change.conn.execute(
                    "SELECT 1 FROM identities WHERE name = ?", [name]
                ).fetchone():
                    raise AlreadyExists(f"identity {name!r} already exists; choose another name")
                now = utcnow()
                change.conn.execute(
                    f"INSERT INTO identities ({_COLUMNS}) VALUES (?, ?, ?, ?, 'active', ?, ?, "
                    "NULL, NULL, NULL)",
                    [name, role.value, key.public_key_pem, key.fingerprint, now, signer.name],
                )
                change.record(
                    "identity.create",
                    f"identity:{name}",
                    {
                        "role": role.value,
                        "key_fingerprint": key.fingerprint,
                        "public_key_pem": key.public_key_pem,
                    },
                )
        except BaseException:
            if created_file:
                key.path.unlink(missing_ok=True)
            raise
        return self.get(name)

    def revoke(self, name: str, *, actor: str | None, reason: str) -> Identity:
        """Revoke ``name``'s key; its signatures stop verifying from now on."""
        if not reason.strip():
            raise InputError("a revocation needs a reason: pass --reason TEXT")
        registry = self._registry
        actor_key = registry.act_as(actor, Action.IDENTITY_REVOKE)
        with registry.change(actor_key, Action.IDENTITY_REVOKE) as change:
            target = self.get_in(change.conn, name)
            if target.status is IdentityStatus.REVOKED:
                raise Conflict(f"identity {name!r} is already revoked ({target.revoke_reason})")
            if target.role is Role.ADMIN:
                admins = change.conn.execute(
                    "SELECT count(*) FROM identities WHERE role = 'admin' AND status = 'active'"
                ).fetchone()
                if admins == (1,):
                    raise PermissionDenied(
                        f"{name!r} is the last active admin; create another admin first"
                    )
            change.conn.execute(
                "UPDATE identities SET status = 'revoked', revoked_at = ?, revoked_by = ?, "
                "revoke_reason = ? WHERE name = ?",
                [utcnow(), actor_key.name, reason, name],
            )
            change.record(
                "identity.revoke",
                f"identity:{name}",
                {"reason": reason, "key_fingerprint": target.key_fingerprint},
            )
        return self.get(name)
