"""The main job on the embedded default: train, register, verify, tamper, audit.

Run by `make demo` (about ten minutes on 2 cores). Everything happens in ./demo-out
(recreated each run) through the real `loraledger` command, printed as a transcript a
newcomer can retype:

1. create a registry and three identities (admin, engineer, reviewer);
2. register the embedded base model (SmolLM2-135M-Instruct, converted once and cached)
   and the project's demo dataset (Northwind Bank support conversations);
3. ask the base model three questions from the domain;
4. train a QLoRA adapter (NF4, double quantization) on it and register it, signed, with
   its training-run record; ask the same questions again and show the lineage;
   evaluate the base and the adapter on the domain benchmark, the sanity suite and the
   policy suite, and compare them with paired tests (regression or noise?); check the
   release gate of the project's policy for staging (it fails, and says why);
5. verify the adapter with the official `model_signing` CLI;
6. tamper with a stored file and watch `verify` and `fetch` refuse it;
7. tamper with the audit log through raw SQL and watch `audit verify` name the event.

Later issues extend this job to evaluate, gate and trace.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "demo-out"
DEMO = ROOT / "trainer" / "demo"
SYSTEM = "You are the support assistant of Northwind Bank. Answer in one or two sentences."
SUITES = ("northwind-domain", "sanity", "northwind-policy")
QUESTIONS = [
    "What is the overdraft fee?",
    "What is the daily ATM withdrawal limit?",
    "Can you guarantee returns on my investment?",
]


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run(
    *args: str,
    expect: int = 0,
    to_file: str | None = None,
    program: str = "loraledger",
    quiet: bool = False,
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
        text = result.stderr + result.stdout  # progress and warnings come before results
    if text.strip() and not quiet:
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
            "TQDM_DISABLE": "1",  # lm-eval's progress bars, which a transcript cannot show
        }
    )
    os.environ.pop("LORALEDGER_ACTOR", None)

    say("A new registry, and who may act on it")
    run("init")
    run("keys", "create", "alice", "--role", "admin")
    run("--as", "alice", "keys", "create", "eve", "--role", "engineer")
    run("--as", "alice", "keys", "create", "rita", "--role", "reviewer")
    run("keys", "list")

    say("The base model and the training data")
    run("--as", "eve", "base", "add")
    run(
        "--as",
        "eve",
        "data",
        "add",
        str(DEMO / "northwind_bank_support.jsonl"),
        "--name",
        "northwind-support",
        "--source",
        "written by the LoRA Ledger team (fictional)",
        "--license",
        "CC-BY-4.0",
    )
    run("data", "show", "northwind-support")

    say("Before training: the base model does not know Northwind Bank")
    run("ask", "--base", "smollm2-135m-instruct", "--system", SYSTEM, *QUESTIONS)

    say("Train a QLoRA adapter (NF4 base, float32 compute on this CPU) and register it")
    # --allow-dirty: the demo also runs from a working copy with local changes; whether
    # the tree was dirty is recorded in the training run either way.
    run("--as", "eve", "train", str(DEMO / "train.yaml"), "--allow-dirty")
    run("--as", "rita", "train", str(DEMO / "train.yaml"), expect=1)

    say("After training: the same questions, answered with the verified adapter")
    run("ask", "--adapter", "northwind-support@v1", "--system", SYSTEM, *QUESTIONS)
    run("adapters", "lineage", "northwind-support@v1")
    run("adapters", "list")
    run("adapters", "verify", "northwind-support@v1")

    say("Evaluate the base and the adapter on three suites (one base load per suite)")
    # northwind-domain: held-out questions on the bank's policies; sanity: general
    # knowledge; northwind-policy: refusals, PII canaries, prohibited claims, disclaimers.
    subjects = ("northwind-support@v1", "base:smollm2-135m-instruct")
    for suite in SUITES:
        run("--as", "eve", "eval", *subjects, "--suite", suite)

    say("Regression or noise? Paired tests per task, the adapter against the bare base")
    for suite in SUITES:
        run("--as", "rita", "compare", *subjects, "--suite", suite)
    say("The release gate: the project's policy (policies/release.yaml) against the evidence")
    # Exit 1 is the point: the adapter learned the bank's answers but not to refuse.
    run("--as", "rita", "gate", "check", "northwind-support@v1", "--env", "staging", expect=1)
    # So a reviewer cannot approve it, and the engineer who trained it never could.
    approve = ("approve", "northwind-support@v1", "--env", "staging", "--comment", "looks good")
    run("--as", "rita", *approve, expect=1)
    run("--as", "eve", *approve, expect=1)
    runs = json.loads(run("evals", "list", "northwind-support@v1", "--json", quiet=True))
    policy_run = next(r["id"] for r in runs if r["suite_name"] == "northwind-policy")
    run("evals", "show", policy_run[:8], "--failed")

    say("Anyone can check the signature with the official OpenSSF model_signing CLI")
    run("adapters", "fetch", "northwind-support@v1", "fetched")
    run("adapters", "signature", "northwind-support@v1", to_file="northwind-v1.sig")
    run("keys", "export-public", "eve", to_file="eve.pub")
    run(
        "verify",
        "key",
        "--signature",
        "northwind-v1.sig",
        "--public_key",
        "eve.pub",
        "fetched",
        program="model_signing",
    )

    say("A second version, from an adapter directory made elsewhere (generated weights)")
    from loraledger.registry.synthetic import write_lora_adapter

    write_lora_adapter(OUT / "adapter-2", base_model="smollm2-135m-instruct@v1", seed=2)
    run("--as", "eve", "adapters", "register", "adapter-2", "--name", "northwind-support")
    run("adapters", "lineage", "northwind-support@v2")

    say("Tamper with one byte of a stored file: verification and fetch refuse it")
    import duckdb

    conn = duckdb.connect(str(OUT / "registry" / "registry.duckdb"), read_only=True)
    (store_path,) = conn.execute(
        "SELECT store_path FROM v_adapter_files WHERE ref = 'northwind-support@v1' "
        "AND path = 'adapter_model.safetensors'"
    ).fetchone()
    conn.close()
    target = OUT / "registry" / store_path
    original = target.read_bytes()
    target.chmod(0o644)
    target.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    run("adapters", "verify", "northwind-support@v1", expect=1)
    run("adapters", "fetch", "northwind-support@v1", "refused", expect=1)
    run("adapters", "verify", "northwind-support@v2")
    target.write_bytes(original)
    target.chmod(0o444)
    run("adapters", "verify", "northwind-support@v1")

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
