"""llama.cpp as LoRA Ledger builds and runs it (policies/llama_cpp.py), without building
it: how a failed step is reported, and that a build is used only on the CPU it was made
for."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from loraledger.policies import llama_cpp

from loraledger.errors import EngineError

# what llama-server printed on an AMX CPU before it crashed (issue #34), then a progress line
CRASH_LOG = """\
llama_adapter_lora_init_impl: loading lora adapter from 'adapter.gguf' ...
llama_adapter_lora_init_impl: lora for 'blk.0.attn_q.weight' cannot use buft 'AMX', fallback to CPU
..........
"""


def test_a_crash_is_reported_with_its_signal_and_its_last_meaningful_line(tmp_path: Path) -> None:
    log = tmp_path / "llama-server.log"
    log.write_text("an earlier server's last words\n")
    with log.open("ab") as output:
        since = output.tell()
        script = f"import os, signal, sys; sys.stdout.write({CRASH_LOG!r}); sys.stdout.flush(); "
        script += "os.kill(os.getpid(), signal.SIGSEGV)"
        done = subprocess.run([sys.executable, "-c", script], stdout=output, check=False)
    assert done.returncode == -signal.SIGSEGV
    assert llama_cpp.ended(done.returncode) == "was killed by signal 11 (SIGSEGV: it crashed)"
    assert llama_cpp.last_line(log, since=since) == (
        "llama_adapter_lora_init_impl: lora for 'blk.0.attn_q.weight' cannot use buft 'AMX', "
        "fallback to CPU"
    )
    assert llama_cpp.ended(1) == "exited with 1"
    assert llama_cpp.ended(-signal.SIGTERM) == "was killed by signal 15 (SIGTERM)"
    # this server wrote nothing: an earlier server's words are not taken for its own
    assert llama_cpp.last_line(log, since=log.stat().st_size) == "no output"
    assert llama_cpp.last_line(tmp_path / "missing.log") == "no log"


def test_a_build_is_used_only_on_the_cpu_it_was_built_for(tmp_path: Path) -> None:
    """The engine is built with -DGGML_NATIVE=ON: a cache carried to another CPU (or one
    written before builds recorded their CPU) is built again, never run."""
    home = llama_cpp.home(tmp_path)
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "llama-server").write_bytes(b"\x7fELF built elsewhere")
    this = llama_cpp.cpu()
    assert this["model"] and len(this["flags_sha256"]) == 64
    for facts in (
        {"package_sha256": llama_cpp.SDIST_SHA256},  # an earlier release's engine.json
        {"cpu": {**this, "flags_sha256": "0" * 64}},  # another CPU's
    ):
        (home / "engine.json").write_text(json.dumps(facts))
        with pytest.raises(EngineError, match="not built for this CPU.*--build-engine"):
            llama_cpp.engine(tmp_path, build=False)
    (home / "engine.json").write_text(json.dumps({"cpu": this}))
    assert llama_cpp.engine(tmp_path, build=False).server == home / "bin" / "llama-server"
