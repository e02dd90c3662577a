"""Training datasets: validating JSONL files and recording where every record came from.

Two formats, one per file:

* chat -- ``{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}``
* prompt-completion -- ``{"prompt": "...", "completion": "..."}``

Every problem is reported with the file, the line and the field. Each record is hashed
over its canonical JSON; the hashes feed a Merkle root in the registry, so one can later
prove whether a given record was in the training data. PII is counted per kind with line
numbers, never copied.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from loraledger.registry import Registry
from loraledger.registry.datasets import record_sha256
from loraledger.registry.models import DatasetAnalysis, DatasetVersion, PiiFinding
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loraledger import inputs
from loraledger.errors import InputError
from loraledger.inputs import loads_json, regular_file

from .pii import scan_text
from .provenance import git_provenance

DEFAULT_MAX_LINE_BYTES = 1 << 20


class DatasetFormat(enum.StrEnum):
    CHAT = "chat"
    PROMPT_COMPLETION = "prompt-completion"


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class ChatRecord(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    messages: list[ChatMessage] = Field(min_length=1)


class PromptCompletionRecord(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    prompt: str = Field(min_length=1)
    completion: str = Field(min_length=1)


_MODELS: dict[DatasetFormat, type[BaseModel]] = {
    DatasetFormat.CHAT: ChatRecord,
    DatasetFormat.PROMPT_COMPLETION: PromptCompletionRecord,
}


def _format_of(record: dict[str, Any]) -> DatasetFormat | None:
    if "messages" in record:
        return DatasetFormat.CHAT
    if "prompt" in record or "completion" in record:
        return DatasetFormat.PROMPT_COMPLETION
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _field_of(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def analyse(path: Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> DatasetAnalysis:
    """Validate a JSONL dataset and compute its content provenance.

    Raises :class:`InputError` naming the file, line and field of the first problem.
    Duplicate records are not errors: they are counted and their lines reported.
    """
    regular_file(path, what="dataset file")
    digest = hashlib.sha256()
    size = 0
    fmt: DatasetFormat | None = None
    lines: list[int] = []
    hashes: list[str] = []
    duplicates: list[int] = []
    seen: set[str] = set()
    pii_lines: dict[str, list[int]] = defaultdict(list)
    pii_counts: dict[str, int] = defaultdict(int)
    # the lines are read in bounded pieces: a line past the limit is refused
    for number, raw in inputs.lines(path, max_line=max_line_bytes, flag="--max-line-bytes"):
        digest.update(raw)
        size += len(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InputError(
                f"is not UTF-8 (byte {error.start} of the line); re-encode the file as UTF-8",
                path=path,
                line=number,
            ) from None
        if not text.strip():
            raise InputError(
                "blank line; remove it (every line must hold one record)",
                path=path,
                line=number,
            )
        record = loads_json(text, path=path, line=number)
        if not isinstance(record, dict):
            raise InputError("a record must be a JSON object", path=path, line=number)
        this = _format_of(record)
        if this is None:
            raise InputError(
                "record has neither 'messages' (chat) nor 'prompt'/'completion'",
                path=path,
                line=number,
            )
        if fmt is None:
            fmt = this
        elif this is not fmt:
            raise InputError(
                f"a {this.value} record in a {fmt.value} dataset; use one format per file",
                path=path,
                line=number,
            )
        try:
            _MODELS[fmt].model_validate(record)
        except ValidationError as error:
            first = error.errors()[0]
            message = first["msg"]
            if first["type"] == "literal_error":
                message = "unknown role; use system, user or assistant"
            raise InputError(
                message, path=path, line=number, field=_field_of(tuple(first["loc"]))
            ) from None
        record_hash = record_sha256(record)
        if record_hash in seen:
            duplicates.append(number)
        seen.add(record_hash)
        lines.append(number)
        hashes.append(record_hash)
        for kind, count in scan_text("\n".join(_strings(record))).items():
            pii_counts[kind] += count
            pii_lines[kind].append(number)
    if not hashes or fmt is None:
        raise InputError("is empty; a dataset needs at least one record", path=path)
    return DatasetAnalysis(
        file_sha256=digest.hexdigest(),
        size_bytes=size,
        format=fmt.value,
        record_lines=tuple(lines),
        record_hashes=tuple(hashes),
        duplicate_lines=tuple(duplicates),
        pii={k: PiiFinding(count=pii_counts[k], lines=tuple(pii_lines[k])) for k in pii_counts},
        git=git_provenance(path),
    )


def validate_license(expression: str) -> str:
    """Normalise an SPDX license expression; refuse unknown identifiers.

    ``LicenseRef-...`` identifiers (SPDX's way to name a license of your own) pass.
    """
    from license_expression import ExpressionError, get_spdx_licensing

    licensing = get_spdx_licensing()
    try:
        parsed = licensing.parse(expression, strict=True)
    except ExpressionError as error:
        raise InputError(
            f"--license {expression!r} is not a valid SPDX expression ({error}); use an "
            "identifier from https://spdx.org/licenses/ or LicenseRef-<your-name>"
        ) from None
    if parsed is None:
        raise InputError("--license is empty; give an SPDX identifier such as CC-BY-4.0")
    unknown = [
        key
        for key in licensing.unknown_license_keys(parsed)
        if not re.fullmatch(r"LicenseRef-[A-Za-z0-9.-]+", key)
    ]
    if unknown:
        raise InputError(
            f"--license {expression!r} names unknown SPDX identifier(s) {', '.join(unknown)}; "
            "use one from https://spdx.org/licenses/ or LicenseRef-<your-name>"
        )
    return str(parsed)


def add_dataset(
    registry: Registry,
    path: Path,
    *,
    name: str,
    source: str,
    license: str,
    actor: str | None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> DatasetVersion:
    """Validate, analyse and register ``path`` as the next version of dataset ``name``."""
    normalised = validate_license(license)
    if not source.strip():
        raise InputError("--source is empty; say where the data came from")
    analysis = analyse(path, max_line_bytes=max_line_bytes)
    return registry.datasets.register(
        path, name, analysis, license=normalised, source=source, actor=actor
    )
