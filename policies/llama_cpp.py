"""llama.cpp as LoRA Ledger uses it: the source pinned by digest, the server built once,
and the conversions to GGUF.

Everything comes from one source package, ``llama-cpp-python`` |version| (its sdist
vendors llama.cpp): ``pip download`` fetches it, its sha256 must be :data:`SDIST_SHA256`
(else it is refused), and it is unpacked and built under the cache, outside any
repository (``~/.cache/loraledger/llama.cpp/<version>-<digest>/``, or
``$LORALEDGER_CACHE``)::

    source.tar.gz        the package, as downloaded and checked
    src/                 unpacked (vendor/llama.cpp: the converters, the server's source)
    bin/llama-server     built with CMake (no web UI download, no OpenSSL, no curl)
    engine.json          what was built from what, written last

A build is written aside and renamed into place, so a half-built engine is never used;
``engine()`` builds once and then returns the cached one (about 5 minutes on 2 cores).

The converters are llama.cpp's own Python scripts, run with this interpreter (they need
torch, transformers and the vendored ``gguf-py``): ``convert_lora_to_gguf.py`` for a PEFT
adapter, ``convert_hf_to_gguf.py`` for a base model directory. Both are deterministic:
the same input gives the same bytes, which is what lets a recorded derivation be checked
by converting again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraledger.registry.store import sha256_file
from loraledger.trainer.base_models import cache_dir

from loraledger.errors import EngineError

VERSION = "0.3.36"
SDIST = f"llama_cpp_python-{VERSION}.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
VENDORED = Path("vendor") / "llama.cpp"
LORA_CONVERTER = VENDORED / "convert_lora_to_gguf.py"
BASE_CONVERTER = VENDORED / "convert_hf_to_gguf.py"
CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DGGML_NATIVE=ON",  # built on the machine that serves: its own CPU's instructions
)
# Options every llama-server is started with. ``--no-repack``: no "extra" CPU buffer
# types for the base's weights (AMX on Intel Xeons since Sapphire Rapids; the repacked
# Q4_0/Q4_K/IQ4_NL layouts). A LoRA adapter cannot live in those ("lora for 'blk.0...'
# cannot use buft 'AMX', fallback to CPU"), and llama.cpp then crashes with SIGSEGV at
# start on an AMX CPU (upstream #11115, #12587, #20824). Measured in docs/serving.md:
# no cost for the embedded Q4_1 and the converted f16 bases on a CPU without AMX (no
# extra buffer type applies to them there).
SERVER_OPTIONS = ("--no-repack",)


@dataclass(frozen=True)
class Engine:
    """A built llama.cpp: its server binary and the source it was built from."""

    home: Path

    @property
    def source(self) -> Path:
        return self.home / "src"

    @property
    def server(self) -> Path:
        return self.home / "bin" / "llama-server"

    def tools(self, converter: Path) -> list[dict[str, Any]]:
        """In-toto resource descriptors of a conversion by ``converter`` (a path under
        the source): the package it came from, and the script itself."""
        return [
            {
                "name": SDIST,
                "uri": f"pkg:pypi/llama-cpp-python@{VERSION}",
                "digest": {"sha256": SDIST_SHA256},
                "annotations": {"role": "converter package"},
            },
            {
                "name": str(converter),
                "digest": {"sha256": sha256_file(self.source / converter)},
                "annotations": {"role": "converter", "python": sys.version.split()[0]},
            },
        ]


def home(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "llama.cpp" / f"{VERSION}-{SDIST_SHA256[:16]}"


def engine(cache: Path | None = None, *, build: bool = True, jobs: int | None = None) -> Engine:
    """The built engine under the cache; built first when missing (``build``), else
    :class:`EngineError` saying how to build it."""
    found = Engine(home(cache))
    if _built(found):
        return found
    if not build:
        raise EngineError(
            f"llama.cpp is not built for this CPU in {found.home}; run `loraledger serve "
            "--build-engine` (about 5 minutes on 2 cores, once per CPU)"
        )
    with _locked(found.home):  # another process building it: wait, then use its build
        return found if _built(found) else _build(found.home, jobs or os.cpu_count() or 1)


def _built(found: Engine) -> bool:
    """Built, and for this CPU: a native build carries the instructions of the machine
    that built it, and a cache moved to another CPU would crash on them (SIGILL)."""
    try:
        facts = json.loads((found.home / "engine.json").read_text())
    except (OSError, ValueError):
        return False
    return found.server.is_file() and isinstance(facts, dict) and facts.get("cpu") == cpu()


def cpu() -> dict[str, str]:
    """The CPU a native build is for: its model and the sha256 of its instruction-set
    flags, as Linux's /proc/cpuinfo names them (the first processor's)."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    flags = " ".join(sorted(fields.get("flags", "").split()))
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine(),
        "flags_sha256": hashlib.sha256(flags.encode()).hexdigest(),
    }


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def source(cache: Path | None = None) -> Engine:
    """The engine's source, unpacked (downloaded and checked first when missing); the
    converters need only this, not the built server."""
    found = Engine(home(cache))
    if not _unpacked(found):
        with _locked(found.home):
            _unpack_once(found)
    return found


def _unpacked(found: Engine) -> bool:
    return (found.source / LORA_CONVERTER).is_file()


def _unpack_once(found: Engine) -> None:
    """The source unpacked under ``found`` (downloaded first when missing); the caller
    holds the lock."""
    if not _unpacked(found):
        _unpack(_download(found.home), found.home)


def _download(directory: Path) -> Path:
    """The source package in ``directory``, its sha256 checked."""
    target = directory / "source.tar.gz"
    if target.is_file() and sha256_file(target) == SDIST_SHA256:
        return target
    with tempfile.TemporaryDirectory(prefix=".download-", dir=directory) as scratch:
        _run(
            [
                sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                "--dest", scratch, f"llama-cpp-python=={VERSION}",
            ],
            "download llama-cpp-python's source package with pip",
            Path(scratch) / "pip.log",
        )  # fmt: skip
        downloaded = Path(scratch) / SDIST
        digest = sha256_file(downloaded) if downloaded.is_file() else "nothing"
        if digest != SDIST_SHA256:
            raise EngineError(
                f"pip downloaded {SDIST} with sha256 {digest[:16]}…, not the pinned "
                f"{SDIST_SHA256[:16]}…; check the package index this machine uses"
            )
        os.replace(downloaded, target)
    return target


def _unpack(package: Path, directory: Path) -> None:
    staging = directory / f".src-{uuid.uuid4().hex[:8]}"
    try:
        with tarfile.open(package) as archive:
            archive.extractall(staging, filter="data")
        (top,) = staging.iterdir()
        shutil.rmtree(directory / "src", ignore_errors=True)
        os.replace(top, directory / "src")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _build(directory: Path, jobs: int) -> Engine:
    built = Engine(directory)
    _unpack_once(built)
    build = directory / "build"
    log = directory / "build.log"
    _run(
        ["cmake", "-S", str(built.source / VENDORED), "-B", str(build), *CMAKE_OPTIONS],
        "configure llama.cpp with CMake",
        log,
    )
    _run(
        ["cmake", "--build", str(build), "--target", "llama-server", "-j", str(jobs)],
        "build llama-server",
        log,
    )
    (directory / "bin").mkdir(exist_ok=True)
    staged = directory / "bin" / f".llama-server-{uuid.uuid4().hex[:8]}"
    shutil.copy2(build / "bin" / "llama-server", staged)
    os.replace(staged, built.server)
    facts = {
        "package": SDIST,
        "package_sha256": SDIST_SHA256,
        "cmake_options": list(CMAKE_OPTIONS),
        "cpu": cpu(),
        "server_sha256": sha256_file(built.server),
    }
    (directory / "engine.json").write_text(json.dumps(facts, indent=2) + "\n")
    shutil.rmtree(build, ignore_errors=True)
    return built


def convert_adapter(built: Engine, adapter: Path, base_config: Path, out: Path) -> None:
    """The PEFT adapter directory ``adapter`` as a float32 GGUF LoRA file ``out``
    (``base_config``: a directory with the base's config.json)."""
    _convert(
        built,
        LORA_CONVERTER,
        ["--base", str(base_config), "--outtype", "f32", str(adapter)],
        out,
    )


def convert_base(built: Engine, base: Path, out: Path) -> None:
    """The Hugging Face model directory ``base`` as a float16 GGUF file ``out``."""
    _convert(built, BASE_CONVERTER, ["--outtype", "f16", str(base)], out)


def misfits(adapter: Path, base: Path) -> list[str]:
    """What in the GGUF LoRA file ``adapter`` does not fit the GGUF model ``base`` ([] when
    it all does): another architecture, a tensor the base lacks, or a low-rank pair whose
    widths are not the base tensor's (``lora_a`` is [in, r], ``lora_b`` [r, out], the base
    tensor [in, out]). Read from the files' headers with the ``gguf`` library."""
    from gguf import GGUFReader

    lora, model = GGUFReader(adapter), GGUFReader(base)

    def architecture(reader: GGUFReader) -> str:
        field = reader.fields.get("general.architecture")
        return str(field.contents()) if field is not None else "?"

    if architecture(lora) != architecture(model):
        return [f"the adapter is for {architecture(lora)}, the base is {architecture(model)}"]
    shapes = {t.name: [int(n) for n in t.shape] for t in model.tensors}
    pairs: dict[str, dict[str, list[int]]] = {}
    for tensor in lora.tensors:
        name, _, half = tensor.name.rpartition(".lora_")
        pairs.setdefault(name, {})[half] = [int(n) for n in tensor.shape]
    problems = []
    for name, pair in sorted(pairs.items()):
        target = shapes.get(name)
        a, b = pair.get("a"), pair.get("b")
        if target is None:
            problems.append(f"{name}: the base has no such tensor")
        elif a is None or b is None or len(a) != 2 or len(b) != 2:
            problems.append(f"{name}: not a pair of lora_a and lora_b matrices")
        elif (a[0], b[1], a[1]) != (target[0], target[1], b[0]):
            problems.append(f"{name}: lora_a {a} and lora_b {b} do not fit the base's {target}")
    return problems


def _convert(built: Engine, script: Path, arguments: list[str], out: Path) -> None:
    partial = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}"
    log = out.parent / f"{out.name}.log"
    try:
        _run(
            [sys.executable, str(built.source / script), "--outfile", str(partial), *arguments],
            f"convert with llama.cpp's {script.name}",
            log,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        )
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def _run(command: list[str], doing: str, log: Path, env: dict[str, str] | None = None) -> None:
    """Run ``command``, its output appended to ``log``; a failure is one EngineError
    naming the step, the log and its last line."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        try:
            done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        except OSError as error:
            raise EngineError(f"could not {doing}: {error}; is {command[0]} installed?") from None
    if done.returncode != 0:
        raise EngineError(
            f"could not {doing} (it {ended(done.returncode)}): {last_line(log)}; see {log}"
        )


def last_line(log: Path, *, since: int = 0) -> str:
    """The last meaningful line of ``log`` from byte ``since`` on (what a failed step said
    last): not blank, and not a progress line of dots or other marks without words."""
    try:
        with log.open("rb") as handle:
            handle.seek(since)
            text = handle.read().decode(errors="replace")
    except OSError:
        return "no log"
    lines = [line.strip() for line in text.splitlines() if re.search(r"[A-Za-z]{2}", line)]
    return lines[-1] if lines else "no output"


def ended(returncode: int) -> str:
    """How a process ended, in words: "exited with 1", "was killed by signal 11 (SIGSEGV:
    it crashed)"."""
    if returncode >= 0:
        return f"exited with {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "an unknown signal"
    crashed = {"SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT"}
    return f"was killed by signal {-returncode} ({name}{': it crashed' if name in crashed else ''})"


__all__ = [
    "SDIST_SHA256",
    "SERVER_OPTIONS",
    "VERSION",
    "Engine",
    "convert_adapter",
    "convert_base",
    "cpu",
    "ended",
    "engine",
    "home",
    "last_line",
    "misfits",
    "source",
]
