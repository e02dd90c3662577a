"""The trust root, and who holds which key, verified back to it.

A registry's first admin is its root. Every identity after it is created (and revoked)
by an ``identity.create`` (``identity.revoke``) event whose change an admin valid at that
point of the chain signed: the first checkpoint at or after the event is signed by the
event's actor, who was an active admin before it. Replaying those events from the root
gives each name its role, its public key and its status; every signature the registry
checks is checked with a key from that replay -- the ``identities`` table is an index,
compared with it row by row.

The root is pinned in a small file anyone can keep (``loraledger trust export >
root.json``, then ``--trust-root root.json`` or ``LORALEDGER_TRUST_ROOT``), so a registry
whose whole history was rewritten under another root is refused. Without a pinned root
the first root seen for a registry id is remembered on this machine (as ssh remembers a
host key, in ``~/.loraledger/known-roots.json`` or ``LORALEDGER_KNOWN_ROOTS``) and a
later change of it is refused; the commands say which root they trusted.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from loraledger.atomic import write_atomically
from loraledger.errors import InputError, NotFound, VerificationError
from loraledger.inputs import read_bytes

from .crosscheck import RESTORE
from .keys import fingerprint
from .models import AuditEvent, Identity, IdentityKey, IdentityStatus, KeyStatus, Role

IDENTITY_EVENTS = ("identity.create", "identity.revoke", "identity.key_add", "identity.key_retire")
ROOT_ENV = "LORALEDGER_TRUST_ROOT"
KNOWN_ROOTS_ENV = "LORALEDGER_KNOWN_ROOTS"
ROOT_FORMAT = "loraledger-trust-root/v1"
MAX_ROOT_BYTES = 1 << 20  # a root is one public key and a few names


class TrustRoot(BaseModel):
    """What an auditor pins: the registry's id and its first admin's public key."""

    model_config = ConfigDict(frozen=True)

    format: str = ROOT_FORMAT
    registry_id: str
    name: str
    key_fingerprint: str
    public_key_pem: str

    @classmethod
    def read(cls, path: Path) -> TrustRoot:
        if not path.exists():
            raise InputError("no trust root file here; write one with `loraledger trust "
                             "export > root.json`", path=path)  # fmt: skip
        data = read_bytes(path, limit=MAX_ROOT_BYTES, what="trust root")  # not /dev/zero
        try:
            root = cls.model_validate_json(data)
        except (ValidationError, ValueError) as error:
            first = str(error).splitlines()[0]
            raise InputError(
                f"is not a trust root as `loraledger trust export` writes it ({first})",
                path=path,
            ) from None
        if root.format != ROOT_FORMAT or fingerprint(root.public_key_pem) != root.key_fingerprint:
            raise InputError(
                "is not a trust root of this format, or its fingerprint is not its key's",
                path=path,
            )
        return root


@dataclass(frozen=True)
class Enrolment:
    """One identity (a person) as its signed history says: created at event
    ``created_seq`` by ``created_by``, revoked at ``revoked_seq`` (if it was), holding
    ``keys`` -- the key it was created with first, then each added, with when each ended."""

    name: str
    role: Role
    public_key_pem: str
    key_fingerprint: str
    created_seq: int
    created_by: str
    revoked_seq: int | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    keys: tuple[IdentityKey, ...] = ()

    def recorded(self) -> dict[str, str | None]:
        """What an ``identities`` row must say of this identity, as JSON values."""
        return {
            "role": self.role.value,
            "public_key_pem": self.public_key_pem,
            "key_fingerprint": self.key_fingerprint,
            "status": self.status.value,
            "created_by": self.created_by,
            "revoked_by": self.revoked_by,
            "revoke_reason": self.revoke_reason,
        }

    @property
    def status(self) -> IdentityStatus:
        return IdentityStatus.ACTIVE if self.revoked_seq is None else IdentityStatus.REVOKED

    def valid_at(self, seq: int, *, bootstrap: bool = False) -> bool:
        """Could this identity sign a checkpoint of event ``seq``? Only after it was
        created (the root: from its own creation) and before it was revoked."""
        created = self.created_seq <= seq if bootstrap else self.created_seq < seq
        return created and (self.revoked_seq is None or seq < self.revoked_seq)

    def _key(self, fingerprint: str | None) -> IdentityKey | None:
        return next((k for k in self.keys if k.key_fingerprint == fingerprint), None)

    def _with_key(self, key: IdentityKey) -> Enrolment:
        keys = tuple(key if k.key_fingerprint == key.key_fingerprint else k for k in self.keys)
        if key not in keys:
            keys = (*keys, key)
        return replace(self, keys=keys)


def replay(events: list[AuditEvent], signer_of: Mapping[int, str]) -> dict[str, Enrolment]:
    """The identities that ``events`` (the identity events, oldest first) make, checking
    that each was made by an admin valid at that point: ``signer_of`` maps each event to
    the signer of the first checkpoint at or after it."""
    history: dict[str, Enrolment] = {}
    for event in events:
        name = event.subject.removeprefix("identity:")
        signer = signer_of.get(event.seq)
        where = f"audit event #{event.seq} ({event.action} of {name!r} by {event.actor!r})"
        if signer != event.actor:
            raise VerificationError(
                f"{where} is covered by a checkpoint signed by {signer!r}, not by its actor: "
                f"it was not written by that admin's change; {RESTORE}"
            )
        if event.action == "identity.create":
            history[name] = _created(event, name, history, where)
            continue
        _check_admin(history, event.actor, event.seq, where)
        target = history.get(name)
        late_compromise = event.action == "identity.key_retire" and "void_from_seq" in event.payload
        if target is None or (target.revoked_seq is not None and not late_compromise):
            raise VerificationError(f"{where} names no active identity; {RESTORE}")
        if event.action == "identity.revoke":
            history[name] = _revoked(target, event, where)
        elif event.action == "identity.key_add":
            history[name] = _key_added(target, event, history, where)
        else:
            history[name] = _key_ended(target, event, where)
    return history


def _compromise(event: AuditEvent, where: str) -> tuple[datetime, int] | None:
    """The compromise an event records, as (since, first void seq); None if it records none."""
    since, void_from = event.payload.get("compromised_since"), event.payload.get("void_from_seq")
    if since is None and void_from is None:
        return None
    try:
        when = datetime.fromisoformat(str(since)).replace(tzinfo=None)
        first = int(str(void_from))
    except ValueError:
        raise VerificationError(f"{where}: its compromise time is malformed; {RESTORE}") from None
    if not 1 <= first <= event.seq:
        raise VerificationError(
            f"{where}: a compromise must start at or before the revocation; {RESTORE}"
        )
    return when, first


def _ended(key: IdentityKey, event: AuditEvent, where: str, reason: str) -> IdentityKey:
    """``key`` as ``event`` ends it: retired, or compromised from a point on (a key that
    had ended before keeps that end; a compromise only adds where its signatures void)."""
    compromise = _compromise(event, where)
    legacy = event.action == "identity.revoke" and "ends" not in event.payload
    ended = key.ended_seq is not None
    return key.model_copy(
        update={
            "status": KeyStatus.COMPROMISED if compromise else KeyStatus.RETIRED,
            "ended_seq": key.ended_seq if ended else event.seq,
            "ended_by": key.ended_by if ended else event.actor,
            "end_reason": f"{key.end_reason}; then {reason}" if ended else reason,
            "compromised_since": compromise[0] if compromise else None,
            # a compromise before the key was enrolled voids it from its enrolment
            "void_from_seq": max(compromise[1], key.added_seq) if compromise else None,
            "voids_all": legacy,
        }
    )


def _revoked(target: Enrolment, event: AuditEvent, where: str) -> Enrolment:
    """The person can no longer act: every active key of theirs ends here, and those the
    event names as compromised (``compromised_keys``) are void from the compromise on.
    A revocation written before keys had histories (no ``ends``) voided every signature
    of the key, and still does."""
    reason = str(event.payload.get("reason"))
    compromised = event.payload.get("compromised_keys")
    compromised = compromised if isinstance(compromised, list) else []
    plain = event.model_copy(
        update={"payload": {k: v for k, v in event.payload.items()
                            if k not in ("compromised_since", "void_from_seq")}}
    )  # fmt: skip
    keys = tuple(
        _ended(k, event, where, reason)
        if k.key_fingerprint in compromised
        else _ended(k, plain, where, reason)
        if k.status is KeyStatus.ACTIVE
        else k
        for k in target.keys
    )
    return replace(
        target,
        revoked_seq=event.seq,
        revoked_by=event.actor,
        revoke_reason=event.payload.get("reason"),
        keys=keys,
    )


def _key_added(
    target: Enrolment, event: AuditEvent, history: dict[str, Enrolment], where: str
) -> Enrolment:
    payload = event.payload
    try:
        pem = str(payload["public_key_pem"])
        recorded = str(payload["key_fingerprint"])
        label = str(payload.get("label") or "")
    except KeyError:
        raise VerificationError(f"{where} does not say the key; {RESTORE}") from None
    if fingerprint(pem) != recorded:
        raise VerificationError(f"{where}: its key's fingerprint is not the recorded one")
    for other in history.values():
        if other._key(recorded) is not None:
            raise VerificationError(
                f"{where} enrols key {recorded[:16]}… already enrolled for {other.name!r}; "
                f"{RESTORE}"
            )
    key = IdentityKey(
        key_fingerprint=recorded,
        public_key_pem=pem,
        label=label,
        added_seq=event.seq,
        added_by=event.actor,
    )
    return target._with_key(key)


def _key_ended(target: Enrolment, event: AuditEvent, where: str) -> Enrolment:
    key = target._key(str(event.payload.get("key_fingerprint")))
    compromise = _compromise(event, where)
    if (
        key is None
        or key.status is KeyStatus.COMPROMISED
        or (key.status is KeyStatus.RETIRED and compromise is None)
    ):
        raise VerificationError(f"{where} ends no active key of {target.name!r}; {RESTORE}")
    return target._with_key(_ended(key, event, where, str(event.payload.get("reason"))))


def _created(event: AuditEvent, name: str, history: dict[str, Enrolment], where: str) -> Enrolment:
    payload = event.payload
    try:
        role = Role(payload["role"])
        pem = str(payload["public_key_pem"])
        recorded = str(payload["key_fingerprint"])
    except (KeyError, ValueError):
        raise VerificationError(f"{where} does not say the role and key; {RESTORE}") from None
    if fingerprint(pem) != recorded:
        raise VerificationError(f"{where}: its key's fingerprint is not the recorded one")
    if name in history:
        raise VerificationError(f"{where} creates {name!r} a second time; {RESTORE}")
    if not history:  # the root: an admin acting as itself
        if event.actor != name or role is not Role.ADMIN:
            raise VerificationError(
                f"{where}: the first identity must be an admin that creates itself; {RESTORE}"
            )
    else:
        _check_admin(history, event.actor, event.seq, where)
    key = IdentityKey(
        key_fingerprint=recorded,
        public_key_pem=pem,
        label=str(payload.get("label") or "enrolment"),
        added_seq=event.seq,
        added_by=event.actor,
    )
    return Enrolment(name, role, pem, recorded, event.seq, event.actor, keys=(key,))


def _check_admin(history: dict[str, Enrolment], actor: str, seq: int, where: str) -> None:
    admin = history.get(actor)
    if admin is None or admin.role is not Role.ADMIN or not admin.valid_at(seq, bootstrap=True):
        raise VerificationError(
            f"{where}: {actor!r} was not an active admin at that point of the chain; {RESTORE}"
        )


@dataclass(frozen=True)
class KeyRing:
    """Every key each identity has held, judged by place in the chain: the keys that could
    sign a checkpoint of event ``seq`` (:class:`.audit.SignerKeys`). ``root`` signs its own
    first checkpoint, in the change that enrols it."""

    keys: Mapping[str, Sequence[IdentityKey]]
    root: str | None

    @classmethod
    def of(cls, history: Mapping[str, Enrolment]) -> KeyRing:
        root = root_of(dict(history))
        return cls({n: e.keys for n, e in history.items()}, root.name if root else None)

    def checkpoint_keys(self, name: str, seq: int) -> Sequence[str]:
        bootstrap = name == self.root
        return [
            k.public_key_pem
            for k in self.keys.get(name, ())
            if k.problem_at(seq, checkpoint=True, bootstrap=bootstrap) is None
        ]

    def void_keys(self, name: str, seq: int) -> Sequence[tuple[str, str]]:
        return [
            (k.public_key_pem, k.problem_at(seq) or "")
            for k in self.keys.get(name, ())
            if k.void_from_seq is not None and seq >= k.void_from_seq
        ]


def key_history(key: IdentityKey) -> dict[str, Any]:
    """Where in the chain ``key`` was valid, as a keys file gives it (an evidence pack's
    ``keys.json``, ``keys export-public --json``): what ``evidence verify`` judges each
    signature by, offline."""
    dumped = key.model_dump(mode="json", exclude={"key_fingerprint", "public_key_pem"})
    return {"key_status": dumped.pop("status"), **dumped}


def held_key(where: str, name: str, identity: Identity | None, key_fingerprint: str | None) -> str:
    """The PEM public key a record signed by ``name`` names: one ``name`` holds or held,
    whatever its status -- the record's own integrity (a row as written). Whether the key
    was valid at the record's place is :func:`signing_key`, asked where a decision rests
    on the record, so a compromise voids what rests on it without making the registry
    unreadable."""
    key = identity.key(str(key_fingerprint)) if identity is not None else None
    if key is None:
        raise VerificationError(
            f"{where}: its key {str(key_fingerprint)[:16]}… is not a key {name!r} was ever "
            f"enrolled with (the identity's key was replaced); {RESTORE}"
        )
    return key.public_key_pem


def signing_key(
    where: str,
    name: str,
    identity: Identity | None,
    key_fingerprint: str | None,
    seq: int,
    then: str,
) -> str:
    """The PEM public key a signature by ``name`` names (``key_fingerprint``), after
    checking it was valid at the signature's place in the chain (audit event ``seq``, the
    one that recorded it): enrolled before, neither ended nor compromised there. ``where``
    starts the error, which names the key and the time; ``then`` says what to do."""
    if identity is None:
        raise VerificationError(f"{where} is signed by unknown identity {name!r}; {RESTORE}")
    problem = identity.key_problem(key_fingerprint, seq)
    if problem is not None:
        raise VerificationError(
            f"{where} is signed by {name!r} with a key not valid at its place in the audit "
            f"chain (event #{seq}): {problem}; {then}"
        )
    key = identity.key(str(key_fingerprint))
    assert key is not None  # (key_problem refuses a key never enrolled)
    return key.public_key_pem


def root_of(history: dict[str, Enrolment]) -> Enrolment | None:
    return min(history.values(), key=lambda e: e.created_seq) if history else None


def check_root(registry_id: str, root: Enrolment, pinned: TrustRoot | None) -> str:
    """Refuse a root other than the pinned one (or, unpinned, than the one this machine
    saw first for ``registry_id``); returns how it was trusted: ``pinned``, ``known`` or
    ``first use`` (remembered now)."""
    if pinned is not None:
        if pinned.registry_id != registry_id:
            raise VerificationError(
                f"the trust root pinned is of registry {pinned.registry_id}, not of this one "
                f"({registry_id}); pass that registry's root file"
            )
        if pinned.key_fingerprint != root.key_fingerprint or pinned.name != root.name:
            raise VerificationError(
                f"this registry's history starts from {root.name!r} (key "
                f"{root.key_fingerprint[:16]}…), not from the pinned root {pinned.name!r} (key "
                f"{pinned.key_fingerprint[:16]}…): its history was rewritten under another root"
            )
        return "pinned"
    known = _known_roots()
    seen = known.get(registry_id)
    if seen is not None:
        if seen.get("key_fingerprint") != root.key_fingerprint:
            raise VerificationError(
                f"the root of registry {registry_id} was {seen.get('name')!r} (key "
                f"{str(seen.get('key_fingerprint'))[:16]}…) when this machine first used it, "
                f"and is now {root.name!r} (key {root.key_fingerprint[:16]}…): its history "
                f"was rewritten; if that is expected, remove the entry from {known_roots_file()}"
            )
        return "known"
    known[registry_id] = {"name": root.name, "key_fingerprint": root.key_fingerprint}
    # a home that cannot be written: trusted for this use only, never remembered
    with contextlib.suppress(OSError):
        write_atomically(known_roots_file(), json.dumps(known, indent=2, sort_keys=True) + "\n")
    return "first use"


def known_roots_file() -> Path:
    return Path(os.environ.get(KNOWN_ROOTS_ENV) or Path.home() / ".loraledger" / "known-roots.json")


def _known_roots() -> dict[str, dict[str, str]]:
    path = known_roots_file()
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise InputError(
            f"is not a known-roots file ({error}); fix or remove it", path=path
        ) from None
    if not isinstance(known, dict):
        raise InputError("is not a known-roots file (a JSON object); fix or remove it", path=path)
    return known


MAX_KNOWN_HEADS = 200  # registries (by address) whose newest head a machine remembers


def known_heads_file() -> Path:
    """Beside the known roots: the newest audit head this machine saw of each registry."""
    return known_roots_file().with_name("known-heads.json")


def check_seen_head(
    registry_id: str, address: str, head: tuple[int, str], hash_at: Callable[[int], str | None]
) -> None:
    """The newest head this machine saw of the registry at ``address`` must still be in
    its log (``hash_at(seq)``: that event's hash now, None when there is no such event);
    then ``head``, when newer, is remembered instead. A log cut at its end -- events,
    their rows and checkpoints deleted from the database and from the published mirror
    together -- is consistent in itself; what the people who used it saw is not. (A copy
    at another address is another place, remembered on its own.)"""
    path = known_heads_file()
    try:
        heads = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        heads = {}
    except (OSError, ValueError) as error:
        raise InputError(f"is not a known-heads file ({error}); fix or remove it",
                         path=path) from None  # fmt: skip
    key = f"{registry_id} {address}"
    seen = heads.get(key) if isinstance(heads, dict) else None
    if isinstance(seen, dict) and isinstance(seen.get("seq"), int):
        if hash_at(seen["seq"]) != seen.get("hash"):
            raise VerificationError(
                f"audit log cut or rewritten: this machine saw event #{seen['seq']} (hash "
                f"{str(seen.get('hash'))[:16]}…) of registry {registry_id} at {seen.get('at')}, "
                f"and the log at {address} now ends at #{head[0]} without it; restore the "
                f"registry from a backup (if it was restored on purpose, remove the entry "
                f"from {path})"
            )
        if head[0] <= seen["seq"]:
            return
    heads = heads if isinstance(heads, dict) else {}
    heads[key] = {"seq": head[0], "hash": head[1], "at": datetime.now(UTC).isoformat()}
    newest = sorted(heads.items(), key=lambda item: str(item[1].get("at")), reverse=True)
    with contextlib.suppress(OSError):  # a home that cannot be written: not remembered
        write_atomically(path, json.dumps(dict(newest[:MAX_KNOWN_HEADS]), indent=1) + "\n")


def known_roots() -> dict[str, dict[str, str]]:
    """The roots this machine trusted on first use, by registry id: name and key
    fingerprint of each."""
    return _known_roots()


def forget_root(registry_id: str) -> dict[str, str]:
    """Forget the root remembered for ``registry_id`` (as ``ssh-keygen -R`` forgets a host
    key): the next use trusts whichever root it finds, and says so. Returns what was
    remembered."""
    known = _known_roots()
    if registry_id not in known:
        remembered = ", ".join(sorted(known)) or "none"
        raise NotFound(
            f"this machine remembers no root for registry {registry_id!r} (remembered: "
            f"{remembered}); see `loraledger trust known`"
        )
    forgotten = known.pop(registry_id)
    write_atomically(known_roots_file(), json.dumps(known, indent=2, sort_keys=True) + "\n")
    return forgotten


def pinned_from_env() -> TrustRoot | None:
    path = os.environ.get(ROOT_ENV)
    return TrustRoot.read(Path(path)) if path else None


__all__ = [
    "IDENTITY_EVENTS",
    "KNOWN_ROOTS_ENV",
    "ROOT_ENV",
    "Enrolment",
    "KeyRing",
    "TrustRoot",
    "check_root",
    "forget_root",
    "held_key",
    "key_history",
    "known_roots",
    "known_roots_file",
    "pinned_from_env",
    "replay",
    "root_of",
    "signing_key",
]
