"""The main job on the embedded default: the registry story end to end.

Run by `make demo`. Everything happens in ./demo-out (recreated each run) through the
real `loraledger` command, printed as a transcript a newcomer can retype:

1. create a registry and three identities (admin, engineer, reviewer);
2. register a generated PEFT LoRA adapter twice (two versions);
3. list, show and verify; verify independently with the official `model_signing` CLI;
4. tamper with a stored file and watch `verify` and `fetch` refuse it;
5. tamper with the audit log through raw SQL and watch `audit verify` name the event.

Later issues extend this job to train, evaluate, gate and trace.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "demo-out"


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run(
    *args: str, expect: int = 0, to_file: str | None = None, program: str = "loraledger"
) -> str:
    """Run a command, echo it and its output, and insist on the expected exit code.

    ``to_file`` saves stdout to that file (shown as a shell redirection) instead of
    printing it.
    """
    shown = f"$ {program} {shlex.join(args)}" + (f" > {to_file}" if to_file else "")
    print(shown, flush=True)
    result = subprocess.run(
        [sys.executable, "-m", program, *args], capture_output=True, text=True, cwd=OUT
    )
    if to_file:
        (OUT / to_file).write_text(result.stdout)
        text = result.stderr
    else:
        text = result.stdout + result.stderr
    if text.strip():
        print(text.rstrip(), flush=True)
    if result.returncode != expect:
        sys.exit(f"demo failed: expected exit {expect}, got {result.returncode}")
    if expect:
        print(f"(exit code {result.returncode}, as expected)")
    return result.stdout


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    os.environ.update(
        {
            "LORALEDGER_REGISTRY": str(OUT / "registry"),
            "LORALEDGER_KEYS_DIR": str(OUT / "keys"),
            "COLUMNS": "160",
        }
    )
    os.environ.pop("LORALEDGER_ACTOR", None)

    say("A new registry, and who may act on it")
    run("init")
    run("keys", "create", "alice", "--role", "admin")
    run("--as", "alice", "keys", "create", "eve", "--role", "engineer")
    run("--as", "alice", "keys", "create", "rita", "--role", "reviewer")
    run("keys", "list")

    say("Two versions of a LoRA adapter for SmolLM2-135M-Instruct (generated weights)")
    from loraledger.registry.synthetic import write_lora_adapter

    for seed in (1, 2):
        write_lora_adapter(OUT / f"adapter-{seed}", seed=seed)
    run("--as", "eve", "adapters", "register", "adapter-1", "--name", "bank-support")
    run("--as", "eve", "adapters", "register", "adapter-2", "--name", "bank-support")
    run("--as", "rita", "adapters", "register", "adapter-2", "--name", "bank-support", expect=1)
    run("adapters", "list")
    run("adapters", "show", "bank-support@v1")
    run("adapters", "verify", "bank-support@v1")

    say("Anyone can check the signature with the official OpenSSF model_signing CLI")
    run("adapters", "fetch", "bank-support@v1", "fetched")
    run("adapters", "signature", "bank-support@v1", to_file="bank-support-v1.sig")
    run("keys", "export-public", "eve", to_file="eve.pub")
    run(
        "verify",
        "key",
        "--signature",
        "bank-support-v1.sig",
        "--public_key",
        "eve.pub",
        "fetched",
        program="model_signing",
    )

    say("Tamper with one byte of a stored file: verification and fetch refuse it")
    import duckdb

    conn = duckdb.connect(str(OUT / "registry" / "registry.duckdb"), read_only=True)
    (store_path,) = conn.execute(
        "SELECT store_path FROM v_adapter_files WHERE ref = 'bank-support@v1' "
        "AND path = 'adapter_model.safetensors'"
    ).fetchone()
    conn.close()
    target = OUT / "registry" / store_path
    original = target.read_bytes()
    target.chmod(0o644)
    target.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    run("adapters", "verify", "bank-support@v1", expect=1)
    run("adapters", "fetch", "bank-support@v1", "refused", expect=1)
    run("adapters", "verify", "bank-support@v2")
    target.write_bytes(original)
    target.chmod(0o444)
    run("adapters", "verify", "bank-support@v1")

    say("The audit log, and what raw SQL edits to it look like")
    run("audit", "log")
    run("audit", "verify")
    head = run("audit", "head").strip()
    shutil.copytree(OUT / "registry", OUT / "tampered")
    conn = duckdb.connect(str(OUT / "tampered" / "registry.duckdb"))
    conn.execute("UPDATE audit_events SET actor = 'rita' WHERE action = 'adapter.register'")
    conn.close()
    run("--registry", "tampered", "audit", "verify", expect=1)
    shutil.rmtree(OUT / "tampered")
    shutil.copytree(OUT / "registry", OUT / "tampered")
    conn = duckdb.connect(str(OUT / "tampered" / "registry.duckdb"))
    conn.execute("DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)")
    conn.execute(
        "DELETE FROM audit_checkpoints WHERE seq = (SELECT max(seq) FROM audit_checkpoints)"
    )
    conn.close()
    run("--registry", "tampered", "audit", "verify", expect=1)
    run("audit", "verify", "--expect-head", head)

    print(
        f"\nDone. The registry is in {OUT / 'registry'}. Auditors can query it with plain "
        "DuckDB (read-only), e.g.\n"
        f'  .venv/bin/python -c "import duckdb; print(duckdb.connect('
        f"'{OUT / 'registry' / 'registry.duckdb'}', read_only=True).sql("
        "'SELECT ref, digest, signer FROM v_adapter_versions'))\""
    )


if __name__ == "__main__":
    main()
