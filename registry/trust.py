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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from loraledger.atomic import write_atomically
from loraledger.errors import InputError, NotFound, VerificationError
from loraledger.inputs import read_bytes

from .crosscheck import RESTORE
from .keys import fingerprint
from .models import AuditEvent, IdentityStatus, Role

IDENTITY_EVENTS = ("identity.create", "identity.revoke")
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
    """One identity as its signed history says: created at event ``created_seq`` by
    ``created_by``, revoked at ``revoked_seq`` (if it was)."""

    name: str
    role: Role
    public_key_pem: str
    key_fingerprint: str
    created_seq: int
    created_by: str
    revoked_seq: int | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

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
        else:
            target = history.get(name)
            _check_admin(history, event.actor, event.seq, where)
            if target is None or target.revoked_seq is not None:
                raise VerificationError(f"{where} revokes no active identity; {RESTORE}")
            history[name] = Enrolment(
                **{**target.__dict__, "revoked_seq": event.seq, "revoked_by": event.actor,
                   "revoke_reason": event.payload.get("reason")}
            )  # fmt: skip
    return history


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
    return Enrolment(name, role, pem, recorded, event.seq, event.actor)


def _check_admin(history: dict[str, Enrolment], actor: str, seq: int, where: str) -> None:
    admin = history.get(actor)
    if admin is None or admin.role is not Role.ADMIN or not admin.valid_at(seq, bootstrap=True):
        raise VerificationError(
            f"{where}: {actor!r} was not an active admin at that point of the chain; {RESTORE}"
        )


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
    "TrustRoot",
    "check_root",
    "forget_root",
    "known_roots",
    "known_roots_file",
    "pinned_from_env",
    "replay",
    "root_of",
]
