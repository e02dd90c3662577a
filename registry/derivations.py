"""Files derived from registered artifacts: what an engine loads instead of the signed
original, traced back to it.

A serving engine may need the approved bytes in another form -- llama.cpp loads a LoRA
adapter as one GGUF file, not the PEFT directory that was signed and approved. Whoever
converts it records a *derivation*: an SLSA Provenance v1 statement (:mod:`.statements`)
over the derived file's sha256, whose first resolved dependency is the source artifact
(``adapter:NAME@vN`` or ``base:NAME@vN``, with its digest) and whose others pin the tool
that converted it; signed with the recorder's key in a DSSE envelope, stored as an
attestation of kind ``derivation``, and named by a ``derive`` audit event on the source's
subject. An auditor holding a served file's sha256 finds the approved version it was
made from, by whom and with what.

A derivation is a claim by whoever recorded it, not an approval: an engine that reuses a
derived file trusts only its own claims or reproduces the conversion (the conversions
used are deterministic). Every read checks each row against its audit event and its own
envelope (:func:`.attestations.check_attestation`), as the full ``audit verify`` does.
"""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Any

from loraledger.errors import VerificationError

from .attestations import Attestations, check_attestation, recorded
from .audit import utcnow
from .core import Core
from .crosscheck import check_same_ids
from .db import Connection
from .models import Attestation, AuditEvent, Derivation
from .permissions import Action
from .statements import derivation_statement

DERIVE_EVENT = "derive"
KINDS = ("adapter", "base")


class Derivations:
    """Derivations of one registry's adapter versions and bases."""

    def __init__(self, core: Core, attestations: Attestations) -> None:
        self._core = core
        self._attestations = attestations

    def record(
        self,
        source: str,
        source_digest: str,
        file: tuple[str, str, int],
        *,
        tools: builtins.list[dict[str, Any]],
        build_type: str,
        parameters: dict[str, Any],
        started: datetime,
        actor: str | None,
    ) -> Derivation:
        """Sign and store that ``file`` (name, sha256, size) was made from ``source``
        (``adapter:REF`` or ``base:REF``, whose digest was ``source_digest``) by ``tools``
        (in-toto resource descriptors) with ``parameters``."""
        kind, _, ref = source.partition(":")
        if kind not in KINDS or not ref:
            raise ValueError(f"a derivation's source is adapter:REF or base:REF, not {source!r}")
        core = self._core
        key = core.act_as(actor, Action.DERIVE)
        name, digest, size = file
        uri = f"loraledger://{core.registry_id}/{kind}/{ref}"
        statement = derivation_statement(
            (name, digest),
            {"name": source, "uri": uri, "digest": {"sha256": source_digest}},
            tools,
            build_type,
            {**parameters, "size_bytes": size},
            started,
            utcnow(),
            str(uuid.uuid4()),
        )
        with core.change(key, Action.DERIVE) as change:
            attestation = self._attestations.insert_in(
                change.conn, "derivation", source, digest, statement, key, utcnow()
            )
            change.record(
                DERIVE_EVENT,
                source,
                {
                    "source_digest": source_digest,
                    "artifact_digest": digest,
                    "name": name,
                    "size_bytes": size,
                    "build_type": build_type,
                    "derivation_attestation": recorded(attestation),
                },
            )
        return _derivation(attestation, statement)

    def of(self, source: str) -> builtins.list[Derivation]:
        """Every derivation of ``source`` (``adapter:REF`` or ``base:REF``), oldest first,
        each checked against its audit event and its signed statement."""
        core = self._core
        with core.db.read() as conn:
            events = core.audited(conn, (DERIVE_EVENT,), source)
            every = self._attestations.rows_in(conn, kind="derivation")
            rows = [a for a in every if a.subject == source]
            return self._checked(conn, source, rows, events)

    def find(self, digest: str) -> builtins.list[Derivation]:
        """The derivations whose file has sha256 ``digest`` (what an auditor holding a
        served file asks), checked."""
        found: builtins.list[Derivation] = []
        with self._core.db.read() as conn:
            rows = self._attestations.rows_in(conn, kind="derivation")
            sources = sorted({a.subject for a in rows if a.artifact_digest == digest})
        for source in sources:
            found.extend(d for d in self.of(source) if d.digest == digest)
        return found

    def _checked(
        self,
        conn: Connection,
        source: str,
        rows: builtins.list[Attestation],
        events: builtins.list[AuditEvent],
    ) -> builtins.list[Derivation]:
        check_same_ids(
            "attestations",
            source,
            sorted(a.id for a in rows),
            sorted(
                (str(e.payload.get("derivation_attestation", {}).get("id")), e.seq) for e in events
            ),
        )
        by_id = {str(e.payload["derivation_attestation"]["id"]): e for e in events}
        identities = self._core.trusted_identities(conn)
        derivations = []
        for attestation in rows:
            event = by_id[attestation.id]
            signed = check_attestation(
                attestation, "derivation", event, identities.get(attestation.signer)
            )
            derivation = _derivation(attestation, signed)
            if derivation.source != source:
                raise VerificationError(
                    f"derivation {attestation.id[:8]} is stored under {source} but its signed "
                    f"statement derives from {derivation.source}; the record was edited"
                )
            if derivation.source_digest != event.payload.get("source_digest"):
                raise VerificationError(
                    f"derivation {attestation.id[:8]} of {source}: its statement names source "
                    f"digest {derivation.source_digest[:16]}…, its audit event #{event.seq} "
                    f"another; the record was edited"
                )
            if self._core.audit.void_reason(event.seq) is None:  # else nobody's word:
                derivations.append((event.seq, derivation))  # derived again when needed
        return [d for _, d in sorted(derivations, key=lambda pair: pair[0])]


def _derivation(attestation: Attestation, statement: dict[str, Any]) -> Derivation:
    (subject,) = statement["subject"]
    definition = statement["predicate"]["buildDefinition"]
    source, *tools = definition["resolvedDependencies"]
    parameters = dict(definition["externalParameters"])
    return Derivation(
        id=attestation.id,
        source=source["name"],
        source_digest=source["digest"]["sha256"],
        name=subject["name"],
        digest=subject["digest"]["sha256"],
        size_bytes=int(parameters.pop("size_bytes")),
        build_type=definition["buildType"],
        parameters=parameters,
        tools=tuple(tools),
        signer=attestation.signer,
        created_at=attestation.created_at,
    )


__all__ = ["DERIVE_EVENT", "Derivations"]
