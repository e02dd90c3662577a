"""`loraledger serve`: a real llama.cpp server on 127.0.0.1 for exactly what an
environment runs -- on the embedded SmolLM2 base (the wheel's GGUF), with adapters of
SmolLM2's shape. What does not verify is refused before anything is converted or
started; a promotion or rollback replaces the server, and a rollback serves the earlier
bytes again; a changed file stops it; a derivation recorded by someone else that the
conversion does not reproduce is refused.

The tests that run llama-server are marked ``llama``: `make test` runs them after the
demo built the engine (`loraledger serve --build-engine`); run alone, the first one
builds it (about 5 minutes on 2 cores, once, in the cache).

Whether a served answer matches `loraledger ask` for the same trained adapter is checked
on the demo's real adapters (tests/test_demo.py): the random adapters here change the
answers, but say nothing a person could compare.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from loraledger.policies import llama_cpp, llama_server
from loraledger.registry import Registry, Role
from loraledger.registry.audit import utcnow
from loraledger.registry.keys import KeyStore
from loraledger.registry.synthetic import write_lora_adapter
from loraledger.trainer.base_models import add_base

from loraledger.errors import EngineError, NothingDeployed, VerificationError, WrongBase
from tests.conftest import ADMIN, ENGINEER, REVIEWER, TEST_CACHE
from tests.dashboard.browser import free_port
from tests.policies.helpers import a_training_run, deploy
from tests.registry.helpers import flipped_weights
from tests.trainer.conftest import build_tiny_base

BASE = "smollm2-135m-instruct@v1"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
# SmolLM2-135M: 576 wide, 30 layers; its k_proj and v_proj are 192 wide (grouped queries)
FITS = {"hidden": 576, "layers": 30, "targets": ("q_proj", "o_proj"), "scale": 0.05}


@pytest.fixture(autouse=True)
def suite_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's cache, not this test's: the engine (built once) and the converted
    base live there, shared with the demo that `make test` runs first."""
    monkeypatch.setenv("LORALEDGER_CACHE", str(TEST_CACHE))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry on the embedded base with bot@v1, v2 (SmolLM2's shape, random), bot@v3
    whose k_proj does not fit the base, and bare@v1 registered without a training run."""
    root = tmp_path_factory.mktemp("llama")
    reg = Registry.init(root / "reg", keys=KeyStore(root / "keys"))
    reg.identities.create(ADMIN, Role.ADMIN, actor=None)
    reg.identities.create(ENGINEER, Role.ENGINEER, actor=ADMIN)
    reg.identities.create(REVIEWER, Role.REVIEWER, actor=ADMIN)
    add_base(reg, name=None, directory=None, actor=ENGINEER)
    for seed in (1, 2):
        adapter = write_lora_adapter(root / f"a{seed}", base_model=BASE, seed=seed, **FITS)
        reg.adapters.register(adapter, "bot", actor=ENGINEER,
                              training_run=a_training_run(reg, BASE))  # fmt: skip
    misfit = write_lora_adapter(
        root / "a3", base_model=BASE, hidden=576, layers=30, targets=("k_proj",), scale=0.05
    )
    reg.adapters.register(misfit, "bot", actor=ENGINEER, training_run=a_training_run(reg, BASE))
    bare = write_lora_adapter(root / "bare", base_model=BASE, seed=4, **FITS)
    reg.adapters.register(bare, "bare", actor=ENGINEER)
    # a local base (a directory, not the wheel's GGUF): llama.cpp's converter makes its GGUF
    tiny = build_tiny_base(root / "tiny-base")
    add_base(reg, name="tiny", directory=tiny, actor=ENGINEER)
    small = write_lora_adapter(root / "small", base_model="tiny@v1", hidden=64, layers=2,
                               targets=("q_proj", "o_proj"), scale=0.05)  # fmt: skip
    reg.adapters.register(small, "small", actor=ENGINEER,
                          training_run=a_training_run(reg, "tiny@v1"))  # fmt: skip
    return root


@pytest.fixture
def registry(built: Path, tmp_path: Path) -> Registry:
    shutil.copytree(built, tmp_path / "home")
    return Registry.open(tmp_path / "home" / "reg", keys=KeyStore(tmp_path / "home" / "keys"))


def test_what_does_not_verify_is_refused_before_anything_is_converted(
    registry: Registry, tmp_path: Path
) -> None:
    serving = tmp_path / "serving"
    with pytest.raises(NothingDeployed):
        llama_server.prepare(registry, "prod", serving, actor=ENGINEER)
    deploy(registry, "prod", "bot@v1")
    with flipped_weights(registry, "bot@v1"), pytest.raises(VerificationError, match="bot@v1"):
        llama_server.prepare(registry, "prod", serving, actor=ENGINEER)
    deploy(registry, "bare", "bare@v1")
    with pytest.raises(VerificationError, match="no training-run record"):
        llama_server.prepare(registry, "bare", serving, actor=ENGINEER)
    assert not (serving / "gguf").exists()
    # the supervisor says so and serves nothing; it keeps watching for a version that
    # verifies
    stop, lines = threading.Event(), []

    def report(line: str) -> None:
        lines.append(line)
        stop.set()

    with flipped_weights(registry, "bot@v1"):
        llama_server.serve(
            registry, "prod", serving, actor=ENGINEER, port=1, stop=stop, report=report
        )
    assert lines and lines[0].startswith("not serving prod: ") and "bot@v1" in lines[0]
    assert not (serving / llama_server.SERVED_FILE).exists()


def test_check_without_a_server_says_so(registry: Registry, tmp_path: Path) -> None:
    (problem,) = llama_server.check(registry, tmp_path)
    assert "no server was started" in problem
    (tmp_path / llama_server.SERVED_FILE).write_text("{not json")
    (problem,) = llama_server.check(registry, tmp_path)
    assert "served.json is not readable" in problem


# --- with llama.cpp's server -----------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> llama_cpp.Engine:
    return llama_cpp.engine()  # built once (minutes) when the cache has none


class Supervisor:
    """`serve` in a thread, as `loraledger serve` runs it, with what it reported."""

    def __init__(self, registry: Registry, directory: Path, port: int) -> None:
        self.lines: list[str] = []
        self.started: list[llama_server.LlamaServer] = []
        self.stop = threading.Event()
        self.changed = threading.Condition()
        # one thread: llama.cpp's threads spin at their barriers, which on a machine busy
        # with other tests (make test) costs minutes of CPU for nothing
        options = {"actor": ENGINEER, "port": port, "poll": 0.2, "threads": 1}
        self.thread = threading.Thread(
            target=llama_server.serve,
            args=(registry, "prod", directory),
            kwargs={
                **options,
                "stop": self.stop,
                "report": self._report,
                "on_start": self._started,
            },
        )

    def _report(self, line: str) -> None:
        with self.changed:
            self.lines.append(line)
            self.changed.notify_all()

    def _started(self, server: llama_server.LlamaServer) -> None:
        with self.changed:
            self.started.append(server)
            self.changed.notify_all()

    def wait_for(self, started: int = 0, line: str | None = None) -> None:
        with self.changed:
            done = self.changed.wait_for(
                lambda: (
                    len(self.started) >= started
                    and (line is None or any(line in seen for seen in self.lines))
                ),
                timeout=300,
            )
        assert done, self.lines


@pytest.fixture
def supervisor(registry: Registry, tmp_path: Path) -> Iterator[Supervisor]:
    running = Supervisor(registry, tmp_path / "serving", free_port())
    running.thread.start()
    yield running
    running.stop.set()
    running.thread.join(timeout=60)
    assert not running.thread.is_alive()
    assert all(s.process.poll() is not None for s in running.started)  # none left running


def top_probabilities(server: llama_server.LlamaServer, **extra: Any) -> list[Any]:
    body = {
        "prompt": "The capital of France is", "n_predict": 1, "n_probs": 5, "temperature": 0,
        **extra,
    }  # fmt: skip
    request = urllib.request.Request(
        f"{server.url}/completion",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        (first,) = json.loads(response.read())["completion_probabilities"]
    return list(first["top_logprobs"])


def answer(server: llama_server.LlamaServer, **extra: Any) -> str:
    return server.chat(QUESTION, max_tokens=16, **extra)


@pytest.mark.slow
@pytest.mark.llama
def test_serves_what_runs_replaces_it_and_rolls_back_to_the_same_bytes(
    engine: llama_cpp.Engine, registry: Registry, supervisor: Supervisor, tmp_path: Path
) -> None:
    serving = tmp_path / "serving"
    deploy(registry, "prod", "bot@v1")
    supervisor.wait_for(started=1)
    first = supervisor.started[0]
    assert first.served.adapter == "bot@v1"
    assert first.loaded() == [
        {"id": 0, "path": first.served.adapter_gguf, "scale": 1.0, "task_name": "",
         "prompt_prefix": ""},
    ]  # fmt: skip
    v1_answer = answer(first)
    # the adapter changes the answer: the same server with its adapter scaled to 0
    assert answer(first, lora=[{"id": 0, "scale": 0.0}]) != v1_answer
    assert llama_server.check(registry, serving) == []
    # the served file's sha256 leads to the approved version
    (derivation,) = registry.derivations.find(first.served.adapter_gguf_sha256)
    assert derivation.source == "adapter:bot@v1"
    assert derivation.source_digest == registry.adapters.get("bot@v1").digest
    assert derivation.signer == ENGINEER
    assert [t["name"] for t in derivation.tools] == [llama_cpp.SDIST, str(llama_cpp.LORA_CONVERTER)]

    deploy(registry, "prod", "bot@v2")
    supervisor.wait_for(started=2)
    second = supervisor.started[1]
    assert first.process.poll() is not None  # replaced, not beside it
    assert second.served.adapter == "bot@v2"
    assert second.served.adapter_gguf_sha256 != first.served.adapter_gguf_sha256
    assert answer(second) != v1_answer

    deploy(registry, "prod", "bot@v1", action="rollback")
    supervisor.wait_for(started=3)
    third = supervisor.started[2]
    assert (third.served.adapter, third.served.adapter_gguf_sha256) == (
        "bot@v1", first.served.adapter_gguf_sha256
    )  # fmt: skip
    assert third.served.adapter_derivation == first.served.adapter_derivation  # reused
    assert answer(third) == v1_answer
    assert len(registry.derivations.of("adapter:bot@v1")) == 1

    # a changed file on disk: `check` names it, the supervisor stops serving it, converts
    # again (the file no longer matches its derivation) and serves the same bytes
    gguf = Path(third.served.adapter_gguf)
    data = bytearray(gguf.read_bytes())
    data[-1] ^= 1
    gguf.write_bytes(bytes(data))
    supervisor.wait_for(started=4, line="stopped serving bot@v1")
    assert third.process.poll() is not None
    assert hashlib.sha256(gguf.read_bytes()).hexdigest() == first.served.adapter_gguf_sha256
    fourth = supervisor.started[3]
    assert answer(fourth) == v1_answer

    # a client turning the adapter off for everyone (llama-server's POST /lora-adapters)
    # is drift too: the server is stopped and started again at scale 1
    set_scale = urllib.request.Request(
        f"{fourth.url}/lora-adapters",
        data=json.dumps([{"id": 0, "scale": 0.0}]).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(set_scale, timeout=10).close()
    supervisor.wait_for(started=5, line="at scale 1")
    assert answer(supervisor.started[4]) == v1_answer


@pytest.mark.slow
def as_q4_0(source: Path, out: Path) -> Path:
    """The GGUF ``source`` with its Q4_1 matrices quantized again as Q4_0: a layout that
    llama.cpp moves into an "extra" CPU buffer type on the x86-64 CPUs it serves on
    (CPU_REPACK with AVX2, AMX where the CPU has it)."""
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, quants

    reader = GGUFReader(source)
    writer = GGUFWriter(out, str(reader.fields["general.architecture"].contents()))
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        if field.types[0] == GGUFValueType.ARRAY:
            writer.add_array(name, field.contents())
        else:
            writer.add_key_value(name, field.contents(), field.types[0])
    for tensor in reader.tensors:
        data, kind = tensor.data, tensor.tensor_type
        if kind == GGMLQuantizationType.Q4_1:
            kind = GGMLQuantizationType.Q4_0
            data = quants.quantize(quants.dequantize(data, GGMLQuantizationType.Q4_1), kind)
        writer.add_tensor(tensor.name, data, raw_shape=data.shape, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


@pytest.mark.llama
def test_an_adapter_never_meets_an_extra_buffer_type(
    engine: llama_cpp.Engine, registry: Registry, tmp_path: Path
) -> None:
    """On an Intel Xeon with AMX, llama-server put the base's weights in its AMX buffers
    and crashed (SIGSEGV) loading a LoRA adapter beside them (issue #34; upstream #11115,
    #12587, #20824). `serve` starts it with --no-repack: a base whose layout llama.cpp
    would repack (Q4_0: CPU_REPACK with AVX2, AMX where the CPU has it) is served with
    the adapter applied, and the log never says an adapter "cannot use buft". Against
    the old command this fails on every x86-64 CPU with AVX2: by that line, or, with
    AMX, by the crash."""
    deploy(registry, "prod", "bot@v1")
    serving = tmp_path / "serving"
    prepared = llama_server.prepare(registry, "prod", serving, actor=ENGINEER)
    q4_0 = as_q4_0(prepared.base_gguf, serving / "gguf" / "base-q4_0.gguf")
    repackable = dataclasses.replace(
        prepared,
        base_gguf=q4_0,
        base_gguf_sha256=hashlib.sha256(q4_0.read_bytes()).hexdigest(),
    )
    server = llama_server.start(repackable, serving, port=free_port(), threads=1)
    try:
        applied = top_probabilities(server)
        assert applied != top_probabilities(server, lora=[{"id": 0, "scale": 0}])
    finally:
        server.stop()
    log = (serving / "llama-server.log").read_text(errors="replace")
    assert "cannot use buft" not in log


@pytest.mark.llama
def test_a_local_base_is_converted_and_its_derivation_recorded(
    engine: llama_cpp.Engine, registry: Registry, tmp_path: Path
) -> None:
    deploy(registry, "prod", "small@v1")
    serving = tmp_path / "serving"
    prepared = llama_server.prepare(registry, "prod", serving, actor=ENGINEER)
    (base,) = registry.derivations.of("base:tiny@v1")
    assert base.source_digest == registry.base_models.get("tiny@v1").digest
    assert [t["name"] for t in base.tools] == [llama_cpp.SDIST, str(llama_cpp.BASE_CONVERTER)]
    assert hashlib.sha256(prepared.base_gguf.read_bytes()).hexdigest() == base.digest
    server = llama_server.start(prepared, serving, port=free_port(), threads=1)
    try:
        assert server.served.base_gguf_sha256 == base.digest
        # a random tiny model says nothing readable; its next-token probabilities show
        # that the adapter is applied
        applied = top_probabilities(server)
        assert applied == top_probabilities(server)  # (deterministic)
        assert applied != top_probabilities(server, lora=[{"id": 0, "scale": 0}])
    finally:
        server.stop()
    # prepared again: both files are reused under the serving identity's derivations
    again = llama_server.prepare(registry, "prod", serving, actor=ENGINEER)
    assert again.base_gguf_sha256 == base.digest
    assert again.adapter_derivation == prepared.adapter_derivation
    assert len(registry.derivations.of("base:tiny@v1")) == 1


@pytest.mark.slow
@pytest.mark.llama
def test_an_adapter_that_does_not_fit_the_base_is_never_served(
    engine: llama_cpp.Engine, registry: Registry, tmp_path: Path
) -> None:
    deploy(registry, "prod", "bot@v3")  # k_proj 576 wide; SmolLM2's is 192
    serving = tmp_path / "serving"
    # the converter does not know the base's widths; the GGUF headers do: refused before
    # llama-server starts
    with pytest.raises(WrongBase, match=r"bot@v3 does not fit its base .*attn_k.weight"):
        llama_server.prepare(registry, "prod", serving, actor=ENGINEER)
    assert not (serving / llama_server.SERVED_FILE).exists()
    assert not (serving / "llama-server.log").exists()  # never started
    # and were it started anyway, llama-server itself refuses to load it
    (adapter,) = (serving / "gguf").glob("adapter-*.gguf")
    (base,) = (serving / "gguf").glob("base-*.gguf")
    assert llama_cpp.misfits(adapter, base)
    done = subprocess.run(
        [str(engine.server), "-m", str(base), "--lora", str(adapter), "--port",
         str(free_port()), "--threads", "1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0


@pytest.mark.slow
@pytest.mark.llama
def test_a_derivation_the_conversion_does_not_reproduce_is_refused(
    engine: llama_cpp.Engine, registry: Registry, tmp_path: Path
) -> None:
    """An insider records, under their own key, that some other file is bot@v1's GGUF
    (with the real converter's digests), and puts that file where the server looks: the
    serving identity does not trust another's claim, converts again, and refuses."""
    deploy(registry, "prod", "bot@v1")
    serving = tmp_path / "serving"
    tools = engine.tools(llama_cpp.LORA_CONVERTER)
    forged = b"GGUF an insider's adapter"
    version = registry.adapters.get("bot@v1")
    registry.derivations.record(
        "adapter:bot@v1", version.digest,
        ("adapter.gguf", hashlib.sha256(forged).hexdigest(), len(forged)), tools=tools,
        build_type=llama_server.BUILD_TYPE, parameters={}, started=utcnow() - timedelta(1),
        actor=REVIEWER,
    )  # fmt: skip
    with pytest.raises(VerificationError, match="not what llama.cpp makes"):
        llama_server.prepare(registry, "prod", serving, actor=ENGINEER)
    assert not list((serving / "gguf").glob("adapter-*.gguf"))


@pytest.mark.slow
@pytest.mark.llama
def test_the_command_serves_checks_answers_and_dies_with_its_server(
    engine: llama_cpp.Engine, registry: Registry, tmp_path: Path
) -> None:
    """`loraledger serve` as an operator runs it; killed outright (SIGKILL, no clean-up),
    it takes its llama-server with it: nothing is left serving unsupervised."""
    deploy(registry, "prod", "bot@v1")
    home = tmp_path / "home"
    env = {
        **os.environ,
        "LORALEDGER_REGISTRY": str(home / "reg"),
        "LORALEDGER_KEYS_DIR": str(home / "keys"),
    }
    cli = [sys.executable, "-m", "loraledger"]
    port = free_port()
    serving = tmp_path / "serving"
    command = [*cli, "--as", ENGINEER, "serve", "--env", "prod", "--dir", str(serving),
               "--port", str(port), "--poll", "0.5", "--threads", "1"]  # fmt: skip
    supervisor = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = supervisor.stdout.readline() if supervisor.stdout else ""
        assert line.startswith("serving bot@v1 (deployment #1 of prod)"), line
        checked = subprocess.run(
            [*cli, "serve", "--check", "--dir", str(serving)], env=env, capture_output=True,
            text=True,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr
        assert f"http://127.0.0.1:{port} serves bot@v1 (deployment #1 of prod" in checked.stdout
        asked = subprocess.run(
            [*cli, "ask", "--served", str(serving), "What is the capital of France?"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert asked.returncode == 0 and asked.stdout.startswith("Q: What is the capital")
        served = llama_server.Served.model_validate_json(
            (serving / llama_server.SERVED_FILE).read_bytes()
        )
    finally:
        supervisor.kill()
        supervisor.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and pid_alive(served.pid):
        time.sleep(0.2)
    assert not pid_alive(served.pid)
    # what it left says so, and asking through it is refused
    checked = subprocess.run(
        [*cli, "serve", "--check", "--dir", str(serving)], env=env, capture_output=True, text=True
    )
    assert checked.returncode == 1
    assert f"llama-server (pid {served.pid}) is not running" in checked.stderr
    asked = subprocess.run(
        [*cli, "ask", "--served", str(serving), "Hello?"], env=env, capture_output=True, text=True
    )
    assert asked.returncode == 1 and "does not serve what was promoted" in asked.stderr


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # a zombie (ended, not yet reaped by its parent's parent) is not serving
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


@pytest.mark.slow
@pytest.mark.llama
def test_a_server_that_cannot_start_is_said_in_one_line(
    engine: llama_cpp.Engine, registry: Registry, tmp_path: Path
) -> None:
    """The port is taken: llama-server exits, and the refusal names its last log line."""
    import socket

    deploy(registry, "prod", "bot@v1")
    serving = tmp_path / "serving"
    prepared = llama_server.prepare(registry, "prod", serving, actor=ENGINEER)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EngineError, match=r"llama-server exited with \d+ before it answered"):
            llama_server.start(prepared, serving, port=port, threads=1)
    assert not (serving / llama_server.SERVED_FILE).exists()


@pytest.mark.slow
def test_a_source_package_of_another_digest_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip hands over a package whose sha256 is not the pinned one (a changed index, a
    republished file): refused, nothing unpacked."""
    monkeypatch.setattr(llama_cpp, "SDIST_SHA256", "0" * 64)
    with pytest.raises(EngineError, match="not the pinned 0000000000000000"):
        llama_cpp.source(tmp_path)
    assert not (llama_cpp.home(tmp_path) / "src").exists()
