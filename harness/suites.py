"""Suites: folders of ordinary lm-eval task YAMLs reading local JSONL.

A suite folder holds one lm-eval *group* YAML (``group: NAME`` listing its tasks), one YAML
per task, the JSONL files the tasks read (``dataset_path: json`` with ``data_files``
relative to the folder) and, where a task scores answers with
``!function scoring.process_results``, the one-line ``scoring.py`` shim. The same folder
runs with plain lm-eval from inside it::

    cd harness/suites/northwind-domain
    lm_eval --model hf --model_args pretrained=BASE --include_path . --tasks northwind-domain

LoRA Ledger's run settings (chat template, system instruction, kind, compute dtype) sit
under the group's ``metadata.loraledger``; lm-eval ignores them.

A suite's identity is the digest over all its files (model-signing's hashing, the same as
for adapters; ``__pycache__`` left out), with the version of the refusal judge mixed in
when its samples are scored by it (``rule: refusal`` / ``answered``): results are
comparable only within one digest.
Built-in suites live in ``harness/suites/`` (benchmarks) and ``policies/suites/``
(policies); any other folder is named by its path.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from importlib.resources import files
from pathlib import Path
from typing import Any

from loraledger.registry.models import SuiteKind
from loraledger.registry.signing import hash_directory

from loraledger.errors import InputError, NotFound, SuiteError

from . import scoring
from .judging import judge_spec, spec_identity

KINDS = tuple(kind.value for kind in SuiteKind)  # benchmark, policy
SUITE_DTYPES = ("auto", "float32", "bfloat16", "float16")


SUITES_GROUP = "loraledger.suites"  # entry points: kind = package holding suites/


def builtin_roots() -> dict[str, Path]:
    """Folders holding the installed suites, by the kind of suite they hold.

    Each is the ``suites/`` folder of a package named by an entry point in the group
    ``loraledger.suites`` (pyproject.toml): this package's benchmarks, the policies
    package's policy suites. The harness so finds policy suites without importing the
    policies package, which depends on it.
    """
    roots: dict[str, Path] = {}
    declared = _declared()
    for kind in KINDS:  # benchmarks first
        if kind in declared:
            roots[kind] = Path(str(files(declared[kind]))) / "suites"
    if "benchmark" not in roots:  # a source tree run without an install
        roots = {"benchmark": Path(__file__).parent / "suites", **roots}
    return roots


@cache
def _declared() -> dict[str, str]:
    """The packages holding suites, by kind, as the installed entry points declare them
    (read once a process: reading every distribution's metadata takes ~25 ms)."""
    return {e.name: e.value for e in entry_points(group=SUITES_GROUP) if e.name in KINDS}


@dataclass(frozen=True)
class SuiteTask:
    name: str
    yaml_path: Path
    output_type: str
    data_files: dict[str, str]  # split -> path relative to the suite folder


@dataclass(frozen=True)
class Suite:
    """A suite folder, checked and hashed."""

    name: str
    kind: SuiteKind
    description: str
    directory: Path
    group_file: Path
    tasks: tuple[SuiteTask, ...]
    digest: str
    files: dict[str, str]
    apply_chat_template: bool = False
    system_instruction: str | None = None
    compute_dtype: str | None = None  # the evaluation's dtype unless a run names one
    settings: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] = field(default_factory=lambda: {"kind": "rules"})

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def judges(self) -> list[str]:
        """The judges its samples are scored by, as they enter the digest: the refusal
        judge the suite names, when samples are scored by it (``refusal`` / ``answered``)."""
        return judges_of(self.directory, self.files, self.judge)

    def rehash(self) -> str:
        """The digest of the folder as it is now."""
        return _digest(self.directory, self.judge)[0]

    def load_rules(self) -> None:
        """Import the suite's ``scoring.py``, if it has one, so the scoring rules it
        registers exist in this process."""
        if (self.directory / "scoring.py").is_file():
            scoring.load_rules(self.directory / "scoring.py")

    def rules_used(self) -> dict[str, int]:
        """How many samples name each scoring rule, after loading the suite's own rules;
        a sample naming an unregistered rule is a :class:`SuiteError` naming the file,
        the line and the registered rules."""
        self.load_rules()
        used: dict[str, int] = {}
        for task in self.tasks:
            for relative in task.data_files.values():
                path = self.directory / relative
                for number, line in enumerate(path.read_text().splitlines(), 1):
                    try:
                        doc = json.loads(line) if line.strip() else None
                    except json.JSONDecodeError as exc:
                        message = f"is not JSON ({exc.msg}); one sample per line"
                        raise InputError(message, path=path, line=number) from None
                    if not isinstance(doc, dict) or (name := scoring.rule_of(doc)) is None:
                        continue
                    try:
                        scoring.rule_named(name, sample=doc.get("id", "?"))
                    except SuiteError as error:
                        raise SuiteError(f"{path}:{number}: {error}") from None
                    used[name] = used.get(name, 0) + 1
        return dict(sorted(used.items()))

    def task_configs(self) -> list[dict[str, Any]]:
        """The tasks' lm-eval configs with data files made absolute, ready for
        ``simple_evaluate(tasks=...)`` from any working directory."""
        from lm_eval.tasks._yaml_loader import load_yaml

        configs = []
        for task in self.tasks:
            try:
                config = load_yaml(task.yaml_path, resolve_func=True)
            except Exception as exc:  # lm-eval raises whatever its loader meets
                raise InputError(
                    f"lm-eval cannot load it: {_one_line(exc)}", path=task.yaml_path
                ) from None
            kwargs = dict(config.get("dataset_kwargs") or {})
            kwargs["data_files"] = {
                split: str(self.directory / rel) for split, rel in task.data_files.items()
            }
            config["dataset_kwargs"] = kwargs
            configs.append(config)
        return configs


def list_suites() -> list[Suite]:
    """The built-in suites, benchmarks first."""
    suites: list[Suite] = []
    for root in builtin_roots().values():
        if root.is_dir():
            suites.extend(load_suite(d) for d in sorted(root.iterdir()) if _is_suite_dir(d))
    return suites


def find_suite(name_or_path: str | Path) -> Suite:
    """A built-in suite by name, or any suite folder by path."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if ("/" in text or candidate.is_dir()) and candidate.is_dir():
        return load_suite(candidate)
    for root in builtin_roots().values():
        if _is_suite_dir(root / text):
            return load_suite(root / text)
    known = ", ".join(s.name for s in list_suites())
    raise NotFound(
        f"no suite named {text!r}; built-in suites: {known}; or pass the path of a suite folder"
    )


# Suites read by this process, by folder: the stat signature of every file when it was
# read, and the suite. Any write to a file changes its ctime (which no user sets), so a
# folder whose signature is unchanged holds the bytes that were read and hashed.
_LOADED: dict[Path, tuple[tuple[tuple[str, int, int, int, int], ...], Suite]] = {}


def load_suite(directory: Path) -> Suite:
    """Read and check a suite folder; errors name the file and field at fault. A folder
    read before by this process, not written since, is not read again."""
    directory = directory.resolve()
    if not directory.is_dir():
        raise InputError("is not a suite folder", path=directory)
    signature = _signature(directory)
    cached = _LOADED.get(directory)
    if cached is not None and cached[0] == signature:
        return cached[1]
    suite = _load_suite(directory)
    _LOADED[directory] = (signature, suite)
    return suite


def _signature(directory: Path) -> tuple[tuple[str, int, int, int, int], ...]:
    found = []
    for path in directory.rglob("*"):
        if "__pycache__" in path.parts:
            continue
        stat = path.lstat()
        found.append((str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino))
    return tuple(sorted(found))


def _load_suite(directory: Path) -> Suite:
    from lm_eval.tasks._yaml_loader import load_yaml

    groups: list[tuple[Path, dict[str, Any]]] = []
    tasks: dict[str, SuiteTask] = {}
    for path in sorted([*directory.rglob("*.yaml"), *directory.rglob("*.yml")]):
        try:
            config = load_yaml(path, resolve_func=False)
        except Exception as exc:
            raise InputError(f"lm-eval cannot read it: {_one_line(exc)}", path=path) from None
        if "group" in config:
            groups.append((path, config))
        elif "task" in config:
            task = _check_task(directory, path, config)
            if task.name in tasks:
                raise InputError(
                    f"task {task.name!r} is also defined in {tasks[task.name].yaml_path.name}; "
                    "give each task its own name",
                    path=path,
                    field="task",
                )
            tasks[task.name] = task
    if len(groups) != 1:
        found = ", ".join(p.name for p, _ in groups) or "none"
        raise InputError(
            f"a suite folder needs exactly one group YAML (`group: NAME` with its `task` "
            f"list); found {found}",
            path=directory,
        )
    group_file, group = groups[0]
    listed = group.get("task")
    if not isinstance(listed, list) or not listed or not all(isinstance(t, str) for t in listed):
        raise InputError("must list the suite's task names", path=group_file, field="task")
    for name in listed:
        if name not in tasks:
            raise InputError(
                f"names task {name!r}, which no YAML in {directory} defines",
                path=group_file,
                field="task",
            )
    unlisted = sorted(set(tasks) - set(listed))
    if unlisted:
        raise InputError(
            f"does not list {', '.join(unlisted)}; list every task of the folder in the group",
            path=group_file,
            field="task",
        )
    metadata = group.get("metadata") or {}
    settings = metadata.get("loraledger") or {} if isinstance(metadata, dict) else {}
    if not isinstance(settings, dict):
        raise InputError("must be a mapping", path=group_file, field="metadata.loraledger")
    default_kind = next(
        (k for k, root in builtin_roots().items() if root in directory.parents), "benchmark"
    )
    kind = settings.get("kind", default_kind)
    if kind not in KINDS:
        raise InputError(
            f"is {kind!r}; use one of {', '.join(KINDS)}",
            path=group_file,
            field="metadata.loraledger.kind",
        )
    system = settings.get("system_instruction")
    if system is not None and not isinstance(system, str):
        raise InputError(
            "must be text", path=group_file, field="metadata.loraledger.system_instruction"
        )
    dtype = settings.get("compute_dtype")
    if dtype is not None and dtype not in SUITE_DTYPES:
        raise InputError(
            f"is {dtype!r}; use one of {', '.join(SUITE_DTYPES)}",
            path=group_file,
            field="metadata.loraledger.compute_dtype",
        )
    judge = judge_spec(settings.get("judge"), path=group_file, base=directory)
    digest, files = _digest(directory, judge)
    return Suite(
        name=str(group["group"]),
        kind=SuiteKind(kind),
        description=str(settings.get("description", "")),
        directory=directory,
        group_file=group_file,
        tasks=tuple(tasks[name] for name in listed),
        digest=digest,
        files=files,
        apply_chat_template=bool(settings.get("apply_chat_template", False)),
        system_instruction=system,
        compute_dtype=dtype,
        settings=dict(settings),
        judge=judge,
    )


def _check_task(directory: Path, path: Path, config: dict[str, Any]) -> SuiteTask:
    if config.get("dataset_path") != "json":
        raise InputError(
            f"is {config.get('dataset_path')!r}; suites read local JSONL: set "
            "`dataset_path: json` and `dataset_kwargs.data_files`",
            path=path,
            field="dataset_path",
        )
    files = (config.get("dataset_kwargs") or {}).get("data_files")
    if isinstance(files, str):
        files = {"test": files}
    if not isinstance(files, dict) or not files:
        raise InputError(
            "must map splits to JSONL files in the suite folder",
            path=path,
            field="dataset_kwargs.data_files",
        )
    for split, rel in files.items():
        target = (directory / str(rel)).resolve()
        if Path(str(rel)).is_absolute() or directory not in target.parents:
            raise InputError(
                f"{rel!r} is outside the suite folder; keep data files inside it so the "
                "suite's digest covers them",
                path=path,
                field=f"dataset_kwargs.data_files.{split}",
            )
        if not target.is_file():
            raise InputError(
                f"data file {rel!r} does not exist in {directory}",
                path=path,
                field=f"dataset_kwargs.data_files.{split}",
            )
    return SuiteTask(
        name=str(config["task"]),
        yaml_path=path,
        output_type=str(config.get("output_type", "generate_until")),
        data_files={str(k): str(v) for k, v in files.items()},
    )


def _is_suite_dir(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*.yaml"))


# Built-in rules whose verdicts come from a judge outside the suite's folder: a suite
# whose samples name one has that judge (its version, or its spec with the head's
# digest) in its digest, so results scored by another judge are never compared with these.
_JUDGED = ("refusal", "answered")
_RULE_FIELD = re.compile(r'"rule"\s*:\s*"(' + "|".join(_JUDGED) + r')"')


def judges_of(directory: Path, files: Iterable[str], judge: dict[str, Any]) -> list[str]:
    """The judge ``judge`` as it enters the digest, when the samples in ``files`` (of
    ``directory``) are scored by it, read from their text (an unknown rule is not this
    function's to refuse); else nothing."""
    used = any(
        _RULE_FIELD.search((directory / relative).read_text("utf-8"))
        for relative in files
        if relative.endswith(".jsonl")
    )
    return [spec_identity(judge)] if used else []


def _digest(directory: Path, judge: dict[str, Any]) -> tuple[str, dict[str, str]]:
    ignore = [p for p in directory.rglob("__pycache__") if p.is_dir()]
    manifest = hash_directory(directory, ignore=ignore)
    judges = judges_of(directory, manifest.files, judge)
    if not judges:
        return manifest.digest, manifest.files
    mixed = hashlib.sha256("\n".join([manifest.digest, *judges]).encode()).hexdigest()
    return mixed, manifest.files


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


__all__ = [
    "KINDS",
    "Suite",
    "SuiteTask",
    "builtin_roots",
    "find_suite",
    "list_suites",
    "load_suite",
]
