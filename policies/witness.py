"""Artifacts as witnesses: what a person keeps outside the registry vouches for its past.

Every signed statement someone keeps -- an approval (``approve --json``), a deployment
record (``deployment.json`` in a serving directory, written by ``sync``), an evidence
pack -- commits to the registry's audit head at its time, and names the record it is. A
registry that has since lost events (cut from the end of its log, rows and all, and the
checkpoint file rewritten to match) no longer contains that head, or that record, and
is refused when the artifact is checked against it: ``sync --check``, ``evidence
verify`` and ``audit verify --against FILE``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraledger.registry import Registry
from loraledger.registry.dsse import open_envelope
from loraledger.registry.models import Approval, Deployment

from loraledger.errors import InputError, VerificationError
from loraledger.inputs import loads_json, read_text

from .pack_checks import MANIFEST, PackCheck, PackReport, read_pack

DEPLOYMENT_FILE = "deployment.json"


@dataclass(frozen=True)
class Witness:
    """One claim an artifact makes about the registry: its log held event ``seq`` with
    ``hash``, and (when ``kind`` is set) it holds the record ``kind`` ``record_id``."""

    what: str
    seq: int
    hash: str
    kind: str | None = None  # "approval" | "deployment"
    record_id: str | None = None
    environment: str | None = None


def _head_of(payload: str | None) -> tuple[int, str] | None:
    if payload is None:
        return None
    try:
        head = json.loads(payload).get("audit_head")
        return (int(head["seq"]), str(head["hash"])) if head else None
    except (ValueError, TypeError, KeyError, AttributeError):
        raise VerificationError(
            "its signed payload is not a JSON object with an audit head"
        ) from None


def of_deployment(deployment: Deployment, what: str) -> list[Witness]:
    head = _head_of(deployment.payload)
    if head is None:
        return []  # a format-1 record committed to no head
    return [
        Witness(what, *head, kind="deployment", record_id=deployment.id,
                environment=deployment.environment)
    ]  # fmt: skip


def of_approval(approval: Approval, what: str) -> list[Witness]:
    head = _head_of(approval.payload)
    if head is None:
        return []
    return [Witness(what, *head, kind="approval", record_id=approval.id)]


def of_pack(path: Path) -> list[Witness]:
    """A pack's checkpoint (the head when it was exported), its deployment, and the
    approvals it carries."""
    files = read_pack(path)
    found: list[Witness] = []
    try:
        if "audit/checkpoint.json" in files:
            checkpoint = loads_json(files["audit/checkpoint.json"], path=path)
            found.append(
                Witness(f"{path} (its audit checkpoint)", int(checkpoint["seq"]),
                        str(checkpoint["head_hash"]))
            )  # fmt: skip
        entries = loads_json(files["keys.json"], path=f"{path}: keys.json")
        keys = {e["key_fingerprint"]: e["public_key_pem"] for e in entries}
        statement = open_envelope(loads_json(files[MANIFEST], path=f"{path}: {MANIFEST}"), keys)
        deployment = Deployment.model_validate(statement["predicate"]["deployment"])
        found += of_deployment(deployment, f"{path} (its deployment)")
        for name in sorted(n for n in files if n.startswith("approvals/")):
            approval = Approval.model_validate_json(files[name])
            found += of_approval(approval, f"{path} ({name})")
    except (KeyError, ValueError, TypeError) as error:
        raise VerificationError(
            f"{path} is not an evidence pack LoRA Ledger wrote ({error})"
        ) from None
    return found


def of_file(path: Path) -> list[Witness]:
    """The witnesses in ``path``: an evidence pack, a serving directory (its
    ``deployment.json``), or a JSON deployment or approval record."""
    if path.is_dir():
        path = path / DEPLOYMENT_FILE
    if not path.is_file():
        raise InputError(
            "is not an evidence pack, a serving directory or a deployment or approval "
            "record; pass one LoRA Ledger wrote",
            path=path,
        )
    if path.name.endswith((".tar.gz", ".tgz")):
        return of_pack(path)
    record: Any = loads_json(read_text(path, what="record"), path=path)
    if isinstance(record, dict) and "decision" in record:
        return of_approval(Approval.model_validate(record), str(path))
    if isinstance(record, dict) and "environment" in record and "action" in record:
        return of_deployment(Deployment.model_validate(record), str(path))
    raise InputError(
        "holds neither a deployment nor an approval record; pass `deployment.json` from a "
        "serving directory, a record printed with --json, or an evidence pack",
        path=path,
    )


def check(registry: Registry, witnesses: list[Witness]) -> int:
    """Refuse ``registry`` if it no longer holds what any witness saw; returns how many
    were checked."""
    approval_ids: set[str] | None = None  # read (and checked) once, when first needed
    for witness in witnesses:
        registry.check_contains(witness.seq, witness.hash, witness.what)
        if witness.kind == "deployment" and witness.environment is not None:
            ids = {d.id for d in registry.deployments.history(witness.environment)}
            if witness.record_id not in ids:
                raise VerificationError(
                    f"{witness.what}: deployment {witness.record_id} of "
                    f"{witness.environment} is no longer in the registry: its events were "
                    "cut; restore the registry from a backup"
                )
        if witness.kind == "approval":
            if approval_ids is None:
                approval_ids = {a.id for a in registry.approvals.list()}
            if witness.record_id not in approval_ids:
                raise VerificationError(
                    f"{witness.what}: approval {witness.record_id} is no longer in the "
                    "registry: its events were cut; restore the registry from a backup"
                )
    return len(witnesses)


def check_pack(registry: Registry, report: PackReport) -> PackReport:
    """``report`` (of a pack that verified offline) with one more check: the registry
    still holds the pack's audit head, its deployment and its approvals."""
    path = Path(report.pack)
    try:
        checked = check(registry, of_pack(path))
        result = PackCheck(
            name="against the registry",
            passed=True,
            detail=f"{registry.root} still holds what the pack saw ({checked} heads and records)",
        )
    except VerificationError as error:
        result = PackCheck(name="against the registry", passed=False, detail=str(error))
    return report.model_copy(update={"checks": (*report.checks, result)})


__all__ = [
    "DEPLOYMENT_FILE",
    "Witness",
    "check",
    "check_pack",
    "of_approval",
    "of_deployment",
    "of_file",
]
