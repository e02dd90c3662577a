"""Identities: who may act on the registry, with which role and which public key.

The first identity of a registry must be an admin and acts as itself; after that only
an admin creates or revokes identities. Revoking never deletes: the row keeps the key,
the time, who revoked it and why, and every signature made with a revoked key stops
verifying.
"""

from __future__ import annotations

from pathlib import Path

from loraledger.errors import (
    AlreadyExists,
    Conflict,
    InputError,
    PermissionDenied,
    UsageError,
    VerificationError,
)

from .audit import utcnow
from .core import IDENTITY_COLUMNS, Core, identity_from_row
from .db import Connection
from .keys import SigningKey, fingerprint, load_public_key, public_pem
from .models import Identity, IdentityStatus, Role
from .permissions import Action
from .refs import validate_name


def refuse_enrolled_key(conn: Connection, key_fingerprint: str) -> None:
    """Refuse a key already enrolled under any name, revoked or not: one key is one
    identity, or one person could count as two reviewers (or approve her own work under
    a second name) and a revoked key could come back under another."""
    holder = conn.execute(
        "SELECT name, status FROM identities WHERE key_fingerprint = ?", [key_fingerprint]
    ).fetchone()
    if holder:
        raise AlreadyExists(
            f"that key (fingerprint {key_fingerprint[:16]}…) is already enrolled as {holder[0]!r} "
            f"({holder[1]}): one key is one identity; have the person make a key of their own "
            "with `loraledger keys generate NAME`"
        )


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
        public_key_pem: str | None = None,
        public_key_file: Path | None = None,
    ) -> Identity:
        """Create identity ``name`` with a new key pair (or its existing key file), or --
        with ``public_key_pem`` -- enrol the public key ``name`` generated on their own
        machine (``loraledger keys generate``): the admin never holds their private key.
        ``public_key_file`` (where that key was read from) is named in errors.

        With no identity in the registry yet, ``name`` bootstraps it: it must be an admin
        and acts as itself (with its own private key). Otherwise ``actor`` must be an
        active admin.
        """
        validate_name(name, what="identity name")
        enrolled = (
            None if public_key_pem is None else _enrolment(name, public_key_pem, public_key_file)
        )
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
            if enrolled is not None:
                raise UsageError(
                    f"the first admin signs for the registry and needs its private key here: "
                    f"run `loraledger keys generate {name}` and then `loraledger keys create "
                    f"{name} --role admin --reuse-key`"
                )
            actor_key = None
        else:
            actor_key = core.act_as(actor, Action.IDENTITY_CREATE)

        created_file = enrolled is None and not (reuse_key and core.keys.path_for(name).exists())
        key: SigningKey | None = None
        if enrolled is None:
            key = (
                core.keys.create(name, passphrase)
                if created_file
                else core.keys.load(name, passphrase)
            )
            enrolled = (key.public_key_pem, key.fingerprint)
        signer = actor_key or key
        assert signer is not None  # the bootstrap identity has its own key
        try:
            with core.change(signer, Action.IDENTITY_CREATE, bootstrap=actor_key is None) as change:
                if change.conn.execute(
                    "SELECT 1 FROM identities WHERE name = ?", [name]
                ).fetchone():
                    raise AlreadyExists(f"identity {name!r} already exists; choose another name")
                refuse_enrolled_key(change.conn, enrolled[1])
                now = utcnow()
                change.conn.execute(
                    f"INSERT INTO identities ({IDENTITY_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, 'active', ?, ?, NULL, NULL, NULL)",
                    [name, role.value, enrolled[0], enrolled[1], now, signer.name],
                )
                change.record(
                    "identity.create",
                    f"identity:{name}",
                    {
                        "role": role.value,
                        "key_fingerprint": enrolled[1],
                        "public_key_pem": enrolled[0],
                        "enrolled": "public key" if key is None else "key made here",
                    },
                )
        except BaseException:
            if created_file and key is not None:
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


def _enrolment(name: str, public_key_pem: str, path: Path | None) -> tuple[str, str]:
    """A public key given for enrolment, as (PEM, fingerprint): a P-256 public key, never
    a private one."""
    if "PRIVATE KEY" in public_key_pem:
        raise InputError(
            f"is a private key; {name} keeps it and sends only the public key "
            f"(`loraledger keys generate {name}` prints it)",
            path=path,
            field=None if path else "public key",
        )
    try:
        key = load_public_key(public_key_pem)
    except VerificationError as error:
        raise InputError(
            f"is not the PEM public key of {name} ({error})",
            path=path,
            field=None if path else "public key",
        ) from None
    if key.curve.name != "secp256r1":
        raise InputError(
            f"is a key on {key.curve.name}; enrol a P-256 key (`keys generate` makes one)",
            path=path,
            field=None if path else "public key",
        )
    pem = public_pem(key)
    return pem, fingerprint(pem)
