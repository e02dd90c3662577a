"""Identities: who may act on the registry, with which role and which public key.

The first identity of a registry must be an admin and acts as itself; after that only
an admin creates or revokes identities. Revoking never deletes: the row keeps the key,
the time, who revoked it and why, and every signature made with a revoked key stops
verifying.
"""

from __future__ import annotations

from loraledger.errors import (
    AlreadyExists,
    Conflict,
    InputError,
    PermissionDenied,
    UsageError,
)

from .audit import utcnow
from .core import IDENTITY_COLUMNS, Core, identity_from_row
from .db import Connection
from .keys import SigningKey
from .models import Identity, IdentityStatus, Role
from .permissions import Action
from .refs import validate_name


class Identities:
    def __init__(self, core: Core) -> None:
        self._core = core

    # --- reading ----------------------------------------------------------------------

    def list(self) -> list[Identity]:
        with self._core.db.read() as conn:
            rows = conn.execute(
                f"SELECT {IDENTITY_COLUMNS} FROM identities ORDER BY name"
            ).fetchall()
        return [identity_from_row(r) for r in rows]

    def get(self, name: str) -> Identity:
        return self._core.identity(name)

    def get_in(self, conn: Connection, name: str) -> Identity:
        return self._core.identity_in(conn, name)

    def public_keys(self, conn: Connection) -> dict[str, str]:
        """Every identity's public key, revoked ones included (for old signatures)."""
        return self._core.public_keys(conn)

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
        core = self._core
        with core.db.read() as conn:
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
            actor_key = core.act_as(actor, Action.IDENTITY_CREATE)

        created_file = not (reuse_key and core.keys.path_for(name).exists())
        key: SigningKey = (
            core.keys.create(name, passphrase) if created_file else core.keys.load(name, passphrase)
        )
        signer = actor_key or key
        try:
            with core.change(signer, Action.IDENTITY_CREATE, bootstrap=actor_key is None) as change:
                if change.conn.execute(
                    "SELECT 1 FROM identities WHERE name = ?", [name]
                ).fetchone():
                    raise AlreadyExists(f"identity {name!r} already exists; choose another name")
                now = utcnow()
                change.conn.execute(
                    f"INSERT INTO identities ({IDENTITY_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, 'active', ?, ?, NULL, NULL, NULL)",
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
        core = self._core
        actor_key = core.act_as(actor, Action.IDENTITY_REVOKE)
        with core.change(actor_key, Action.IDENTITY_REVOKE) as change:
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
