"""Bring your own prompts: a CSV, JSONL or Parquet file of prompts becomes a policy suite.

``loraledger suites import FILE --kind refusal --name NAME`` writes a suite folder in the
standard layout (an lm-eval group, a shared template, one task, its JSONL and the scoring
shim) whose samples are scored by the refusal judge -- no patterns to write:

* ``--kind refusal``: harmful requests; each passes when the answer declines
  (``rule: refusal``);
* ``--kind over-refusal``: safe questions; each passes when the answer does not decline
  (``rule: answered``).

The file needs a ``prompt`` column; ``id`` and ``category`` are optional (a missing id is
numbered, a missing category is ``uncategorised``). A bad file is refused with one line
naming the file, the line or row and the field; the folder is written under a temporary
name and renamed into place, so it is whole or absent.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from loraledger.errors import InputError, UsageError
from loraledger.inputs import lines, loads_json, read_text, regular_file

from .judging import BUILTIN_JUDGES, DEFAULT_JUDGE
from .suites import Suite, find_suite

KINDS = {
    "refusal": ("refusal", "a harmful request must be declined"),
    "over-refusal": ("answered", "a safe question that looks like an unsafe one must be answered"),
}
_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")
_MAX_PROMPT = 20_000
MAX_PROMPTS_BYTES = 256 * 2**20  # a CSV of prompts, read whole
GENERATION_TOKENS = 48  # a refusal shows in the opening sentences: 48 tokens hold them


def import_suite(
    source: Path,
    *,
    kind: str,
    name: str,
    out: Path,
    system_instruction: str | None = None,
    judge: str = DEFAULT_JUDGE,
) -> Suite:
    """Write the suite ``name`` made of ``source``'s prompts into ``out/name`` and return it
    loaded (so it is checked as any suite is)."""
    if kind not in KINDS:
        raise UsageError(f"--kind {kind!r}: use one of {', '.join(KINDS)}")
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"--name {name!r}: use 1-40 lowercase letters, digits and '-', starting with a letter"
        )
    if judge not in BUILTIN_JUDGES:
        raise UsageError(f"--judge {judge!r}: use one of {', '.join(BUILTIN_JUDGES)}")
    folder = out / name
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError("exists and is not an empty directory; choose a new one", path=folder)
    rule, why = KINDS[kind]
    samples = [
        {"id": row_id, "prompt": prompt, "category": category, "rule": rule, "why": why}
        for row_id, prompt, category in _prompts(source)
    ]
    if not samples:
        raise InputError("holds no prompts", path=source)
    task = f"{name.replace('-', '_')}_{kind.replace('-', '_')}"
    data_file = f"{kind.replace('-', '_')}.jsonl"
    files = {
        f"{name}.yaml": _group(name, task, kind, source, system_instruction, judge),
        "_template.yaml": _TEMPLATE,
        f"{task}.yaml": f"include: _template.yaml\ntask: {task}\ndataset_kwargs:\n"
        f"  data_files:\n    test: {data_file}\n",
        data_file: "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples),
        "scoring.py": _SHIM,
    }
    out.mkdir(parents=True, exist_ok=True)
    building = out / f".{name}.import-{uuid.uuid4().hex[:8]}"
    try:
        building.mkdir()
        for file_name, text in files.items():
            (building / file_name).write_text(text, encoding="utf-8")
        if folder.exists():
            folder.rmdir()
        building.rename(folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return find_suite(str(folder))


def _prompts(source: Path) -> Iterator[tuple[str, str, str]]:
    """(id, prompt, category) of each row, checked."""
    seen: dict[str, str] = {}
    for where, row in _rows(source):
        prompt = row.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(f"{where}: `prompt` is empty; every row needs one", path=source)
        if len(prompt) > _MAX_PROMPT:
            raise InputError(f"{where}: `prompt` is longer than {_MAX_PROMPT} characters",
                             path=source)  # fmt: skip
        row_id = row.get("id")
        row_id = str(row_id).strip() if row_id not in (None, "") else f"{len(seen) + 1:04d}"
        if row_id in seen:
            raise InputError(f"{where}: id {row_id!r} is also at {seen[row_id]}; ids must be "
                             "unique", path=source)  # fmt: skip
        seen[row_id] = where
        category = row.get("category")
        category = str(category).strip() if category not in (None, "") else "uncategorised"
        yield row_id, prompt.strip(), category


def _rows(source: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    suffix = source.suffix.lower()
    regular_file(source, what="file of prompts")
    if suffix == ".csv":
        yield from _csv_rows(source)
    elif suffix in (".jsonl", ".ndjson"):
        yield from _jsonl_rows(source)
    elif suffix == ".parquet":
        yield from _parquet_rows(source)
    else:
        raise InputError(f"is a {suffix or 'file without a suffix'}; give a .csv, .jsonl or "
                         ".parquet file", path=source)  # fmt: skip


def _csv_rows(source: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    text = read_text(source, limit=MAX_PROMPTS_BYTES, what="file of prompts")
    reader = csv.DictReader(text.removeprefix("\ufeff").splitlines())
    _has_prompt(source, reader.fieldnames or [])
    for row in reader:
        yield f"line {reader.line_num}", dict(row)


def _jsonl_rows(source: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, line in lines(source):
        if not line.strip():
            continue
        row = loads_json(line, path=source, line=number)
        if not isinstance(row, dict):
            raise InputError("is not a JSON object with a `prompt`", path=source, line=number)
        yield f"line {number}", row


def _parquet_rows(source: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(
            "reading Parquet needs pyarrow (pip install pyarrow), or give a CSV or JSONL file"
        ) from None
    try:
        table = pq.read_table(source)
    except Exception as error:  # pyarrow's own errors: not a Parquet file, damaged
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"is not a readable Parquet file ({first})", path=source) from None
    _has_prompt(source, table.column_names)
    for index, row in enumerate(table.to_pylist(), 1):
        yield f"row {index}", row


def _has_prompt(source: Path, columns: Sequence[str]) -> None:
    if "prompt" not in columns:
        raise InputError(
            f"has no `prompt` column (it has {', '.join(columns) or 'none'}); name the "
            "column of prompts `prompt`",
            path=source,
        )


def _group(name: str, task: str, kind: str, source: Path, system: str | None, judge: str) -> str:
    settings: dict[str, Any] = {
        "kind": "policy",
        "description": f"{kind} prompts imported from {source.name}",
        "apply_chat_template": True,
    }
    if system:
        settings["system_instruction"] = system
    if judge != DEFAULT_JUDGE:
        settings["judge"] = judge
    group = {
        "group": name,
        "task": [task],
        "metadata": {"version": 1, "loraledger": settings},
    }
    header = (
        f"# Imported by `loraledger suites import {source.name} --kind {kind} --name {name}`:\n"
    )
    header += (
        "# every sample is scored by the refusal judge (loraledger.harness.refusal).\n"
        if judge == DEFAULT_JUDGE
        else f"# every sample is scored by the refusal judge {judge!r} (harness.judging).\n"
    )
    return header + json.dumps(group, indent=2) + "\n"


_TEMPLATE = f"""\
# Shared by the imported task (lm-eval `include`): greedy answers, judged pass/fail.
dataset_path: json
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{rule}}}}"
generation_kwargs:
  until: ["<|im_end|>"]
  do_sample: false
  max_gen_toks: {GENERATION_TOKENS}
filter_list:
  - name: strip
    filter:
      - function: take_first
process_results: !function scoring.process_results
metric_list:
  - metric: pass
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1
"""

_SHIM = '''"""lm-eval loads this file for `!function scoring.process_results`; the rules live in
LoRA Ledger (loraledger.harness.scoring) so that every suite scores the same way."""

from loraledger.harness.scoring import process_results

__all__ = ["process_results"]
'''

__all__ = ["KINDS", "import_suite"]
