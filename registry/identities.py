"""Identities: the people (and services) who act on the registry, their roles and keys.

The first identity of a registry must be an admin and acts as itself; after that only
an admin creates or revokes identities and enrols, rotates or retires their keys. A
person holds one or more keys (laptop, dashboard host, CI), each enrolled by its public
key with a label; every count of people counts the person, never the key.

A signature is judged by its place in the audit chain: a key retired, rotated, or whose
person was revoked (left) leaves everything it signed before valid. A key revoked as
compromised since a time voids its signatures from the first event at or after that time
on. Nothing is deleted: the history keeps every key, who ended it, when and why.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from loraledger.errors import (
    AlreadyExists,
    Conflict,
    InputError,
    PermissionDenied,
    UsageError,
    VerificationError,
)

from .audit import utcnow
from .core import IDENTITY_COLUMNS, Change, Core
from .db import Connection
from .keys import SigningKey, fingerprint, load_public_key, public_pem
from .models import Identity, IdentityKey, IdentityStatus, KeyStatus, Role
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


def _refuse_held_key(core: Core, conn: Connection, key_fingerprint: str, name: str) -> None:
    """Refuse a key any person holds or held: as their first key (the ``identities``
    rows) or as a key added since (their signed history)."""
    refuse_enrolled_key(conn, key_fingerprint)
    for other in core.trusted_identities(conn).values():
        if other.key(key_fingerprint) is not None:
            raise AlreadyExists(
                f"that key (fingerprint {key_fingerprint[:16]}…) is already enrolled for "
                f"{other.name!r}: one key is one person's; make a new one with `loraledger "
                f"keys generate {name}`"
            )


class Identities:
    def __init__(self, core: Core) -> None:
        self._core = core

    # --- reading ----------------------------------------------------------------------

    def list(self) -> list[Identity]:
        """Every identity, with its keys, as its signed history says (checked)."""
        with self._core.db.read() as conn:
            trusted = self._core.trusted_identities(conn)
        return [trusted[name] for name in sorted(trusted)]

    def get(self, name: str) -> Identity:
        return self._core.identity(name)

    def get_in(self, conn: Connection, name: str) -> Identity:
        return self._core.identity_in(conn, name)

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
                _refuse_held_key(core, change.conn, enrolled[1], name)
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

    def revoke(
        self,
        name: str,
        *,
        actor: str | None,
        reason: str,
        compromised_since: datetime | None = None,
        key: str | None = None,
    ) -> Identity:
        """Revoke ``name`` (they leave: they can no longer act; what they signed before
        stays valid), or -- with ``compromised_since`` -- declare their keys (or only the
        key ``key``, a fingerprint or its start; the person then stays) stolen since that
        time: every signature of it placed at or after the first audit event at or after
        that time is void, and the decisions resting on them are refused where read."""
        if not reason.strip():
            raise InputError("a revocation needs a reason: pass --reason TEXT")
        if key is not None and compromised_since is None:
            raise UsageError(
                "--key names one key to revoke as compromised: pass --compromised-since "
                f"TIME, or retire it with `loraledger keys retire {name} --key {key}`"
            )
        if compromised_since is not None and compromised_since > _naive(utcnow()):
            raise InputError(
                f"--compromised-since {compromised_since:%Y-%m-%d %H:%M:%S} is in the future; "
                "give the time (UTC) from which the key may have been used by someone else"
            )
        core = self._core
        # one key (the person stays) is a key's retirement; else the person's revocation
        actor_key = core.act_as(
            actor, Action.IDENTITY_KEY_RETIRE if key is not None else Action.IDENTITY_REVOKE
        )
        with core.change(
            actor_key, Action.IDENTITY_KEY_RETIRE if key is not None else Action.IDENTITY_REVOKE
        ) as change:
            target = self.get_in(change.conn, name)
            chosen = [_key_of(target, key)] if key is not None else list(target.keys)
            if compromised_since is not None and actor_key.fingerprint in {
                k.key_fingerprint for k in chosen
            }:
                raise PermissionDenied(
                    "an admin cannot declare the key it acts with compromised: act as "
                    "another admin (keep two), or with a key of yours that is not"
                )
            void_from = (
                _first_event_at(change.conn, compromised_since, name)
                if compromised_since is not None
                else None
            )
            compromise = (
                {}
                if compromised_since is None
                else {
                    "compromised_since": compromised_since.isoformat(timespec="microseconds"),
                    "void_from_seq": void_from,
                }
            )
            if key is not None:
                held = chosen[0]
                if held.status is KeyStatus.COMPROMISED:
                    raise Conflict(f"key {held.key_fingerprint[:16]}… is already revoked")
                change.record(
                    "identity.key_retire",
                    f"identity:{name}",
                    {"key_fingerprint": held.key_fingerprint, "reason": reason, **compromise},
                )
            else:
                self._revoke_in(change, target, actor_key.name, reason, compromise)
        return self.get(name)

    def _revoke_in(
        self,
        change: Change,
        target: Identity,
        actor: str,
        reason: str,
        compromise: dict[str, Any],
    ) -> None:
        name = target.name
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
            [utcnow(), actor, reason, name],
        )
        compromised = [k.key_fingerprint for k in target.keys] if compromise else []
        change.record(
            "identity.revoke",
            f"identity:{name}",
            {
                "reason": reason,
                "key_fingerprint": target.key_fingerprint,
                "ends": "active keys" if not compromise else "active keys; compromised",
                "compromised_keys": compromised,
                **compromise,
            },
        )

    def add_key(
        self,
        name: str,
        public_key_pem: str,
        *,
        actor: str | None,
        label: str = "",
        public_key_file: Path | None = None,
        retire: str | None = None,
    ) -> Identity:
        """Enrol another key of ``name`` (made on their machine with ``keys generate``):
        it signs from now on. With ``retire`` (a fingerprint or its start), that key is
        retired in the same change -- a rotation: what it signed before stays valid."""
        label = label.strip() or "key"
        validate_name(label, what="key label")
        pem, key_fingerprint = _enrolment(name, public_key_pem, public_key_file)
        core = self._core
        actor_key = core.act_as(actor, Action.IDENTITY_KEY_ADD)
        with core.change(actor_key, Action.IDENTITY_KEY_ADD) as change:
            target = self.get_in(change.conn, name)
            if target.status is IdentityStatus.REVOKED:
                raise Conflict(
                    f"identity {name!r} was revoked ({target.revoke_reason}); it takes no new key"
                )
            old = _key_of(target, retire) if retire is not None else None
            if old is not None and old.status is not KeyStatus.ACTIVE:
                raise Conflict(f"key {old.key_fingerprint[:16]}… is already {old.status.value}")
            _refuse_held_key(core, change.conn, key_fingerprint, name)
            change.record(
                "identity.key_add",
                f"identity:{name}",
                {"key_fingerprint": key_fingerprint, "public_key_pem": pem, "label": label},
            )
            if old is not None:
                change.record(
                    "identity.key_retire",
                    f"identity:{name}",
                    {"key_fingerprint": old.key_fingerprint, "reason": f"rotated to {label}"},
                )
        return self.get(name)

    def rotate(
        self,
        name: str,
        public_key_pem: str,
        *,
        actor: str | None,
        label: str = "",
        public_key_file: Path | None = None,
    ) -> Identity:
        """Enrol ``name``'s new key and retire the key they held (their only active one)."""
        current = self.get(name).active_keys
        if len(current) != 1:
            held = ", ".join(f"{k.key_fingerprint[:16]} ({k.label})" for k in current) or "none"
            raise UsageError(
                f"{name!r} holds {len(current)} active keys ({held}): say which one to replace "
                f"with `loraledger keys add-key {name} --public-key FILE` and `loraledger keys "
                f"retire {name} --key FINGERPRINT --reason R`"
            )
        return self.add_key(
            name,
            public_key_pem,
            actor=actor,
            label=label or current[0].label,
            public_key_file=public_key_file,
            retire=current[0].key_fingerprint,
        )

    def retire_key(self, name: str, key: str, *, actor: str | None, reason: str) -> Identity:
        """Retire one of ``name``'s keys (a laptop given back, a CI runner gone): it signs
        nothing from now on; what it signed before stays valid."""
        if not reason.strip():
            raise InputError("retiring a key needs a reason: pass --reason TEXT")
        core = self._core
        actor_key = core.act_as(actor, Action.IDENTITY_KEY_RETIRE)
        with core.change(actor_key, Action.IDENTITY_KEY_RETIRE) as change:
            target = self.get_in(change.conn, name)
            held = _key_of(target, key)
            if held.status is not KeyStatus.ACTIVE:
                raise Conflict(f"key {held.key_fingerprint[:16]}… is already {held.status.value}")
            if len(target.active_keys) == 1 and target.status is IdentityStatus.ACTIVE:
                raise Conflict(
                    f"it is {name!r}'s last active key: enrol another first (`loraledger keys "
                    f"rotate {name} --public-key FILE`), or revoke {name} if they left"
                )
            change.record(
                "identity.key_retire",
                f"identity:{name}",
                {"key_fingerprint": held.key_fingerprint, "reason": reason},
            )
        return self.get(name)


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


def _key_of(identity: Identity, fingerprint: str) -> IdentityKey:
    """``identity``'s key whose fingerprint is (or starts with, 8 characters at least)
    ``fingerprint``."""
    wanted = fingerprint.strip().lower()
    found = [k for k in identity.keys if len(wanted) >= 8 and k.key_fingerprint.startswith(wanted)]
    if len(found) != 1:
        held = ", ".join(f"{k.key_fingerprint[:16]} ({k.label}, {k.status.value})"
                         for k in identity.keys)  # fmt: skip
        raise InputError(
            f"{identity.name!r} holds no key {fingerprint!r} (give 8 or more hex digits of "
            f"one of: {held}); see `loraledger keys show {identity.name}`",
            field="--key",
        )
    return found[0]


def _first_event_at(conn: Connection, since: datetime, name: str) -> int:
    """The place in the chain from which a key of ``name`` compromised since ``since`` is
    void: just after the last event before that time by anyone else. Only other people's
    events vouch for time -- a thief's own events say whatever time he likes -- so an event
    of ``name`` after that one is void whatever time it claims (the revocation's own place,
    when there is no later event)."""
    row = conn.execute(
        "SELECT coalesce(max(seq), 0) + 1 FROM audit_events WHERE created_at < ? AND actor <> ?",
        [_naive(since), name],
    ).fetchone()
    return int(row[0]) if row is not None else 1


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
