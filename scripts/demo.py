"""The main job on the embedded default: train, evaluate, release, roll back, audit.

Run by `make demo` (about 25 minutes on 2 cores, 5 of them building llama.cpp's server
the first time). Everything happens in
./demo-out (recreated each run) through the real `loraledger` command, printed as a
transcript a newcomer can retype:

1. create a registry and five identities (admin, engineer, two reviewers, auditor);
2. register the embedded base model (SmolLM2-135M-Instruct, converted once and cached)
   and the project's demo data (fictional Northwind Bank support conversations, and
   safety examples: harmful requests refused, safe look-alikes answered);
3. ask the base model three questions from the domain;
4. train a QLoRA adapter (NF4, double quantization) and register it, signed, with its
   training run and SLSA provenance; ask again and show the lineage;
5. evaluate the base and the adapter on the domain benchmark, the sanity suite and the
   policy suite, and compare them with paired tests (regression or noise?);
6. release it under the project's policy (policies/release.yaml): gate check, the
   trainer's own approval refused (an engineer) and the auditor's (role),
   approval by reviewers, promotion to staging and then production (two approvals);
7. a second adapter beside it: the vendor's `partner` adapter, made elsewhere, judged by
   the policy's own entry for it, released to staging and production on its own track;
   the registrant's (an admin's) approval refused (separation of duties);
8. train a second version with a new seed, evaluate it, compare it with what production
   runs, and release it to staging; production refuses it (it refuses fewer harmful
   requests than the first: the paired test on 250 samples); serve staging's
   northwind-support with llama.cpp; roll it back to the first (partner runs on), sync a
   serving directory before and after, and trace what production runs -- every link
   verified;
9. export the evidence pack of production's northwind-support and verify it offline;
   change one file in a copy and watch verification name it;
10. verify the adapter with the official `model_signing` CLI; register the vendor's next
   version (nobody reviewed it); tamper
   with a stored file and watch `verify` and `fetch` refuse it; tamper with the audit
   log through raw SQL and watch `audit verify` name the event; copy a signed approval
   onto an unreviewed version through SQL and watch `promote` and `audit verify` refuse
   the forged row;
11. rotate eve's key (her new laptop): what she signed with the old one still verifies
   and production still traces.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "demo-out"
DEMO = ROOT / "trainer" / "demo"
SYSTEM = "You are the support assistant of Northwind Bank. Answer in one or two sentences."
POLICY = "northwind-policy"
SUITES = ("northwind-domain", "sanity", POLICY)
DASHBOARD_PASSWORD = "northwind-demo"  # the demo's sign-ins only; never a real password
# 32 prompts a generation batch: on 2 cores 1.6x the throughput of the default 8 on the
# policy suite's 654 prompts (docs/evaluation.md); the batch size is recorded with each run
BATCH = ("--batch-size", "32")
QUESTIONS = [
    "What is the overdraft fee?",
    "What is the daily ATM withdrawal limit?",
    "Can you guarantee returns on my investment?",
]


STARTED = time.monotonic()


def say(text: str) -> None:
    minutes, seconds = divmod(int(time.monotonic() - STARTED), 60)
    print(f"\n== {text}  [{minutes}m{seconds:02d}s]", flush=True)


def run(
    *args: str,
    expect: int = 0,
    to_file: str | None = None,
    program: str = "loraledger",
    quiet: bool = False,
    stdin: str | None = None,
) -> str:
    """Run a command, echo it and its output, and insist on the expected exit code.

    ``to_file`` saves stdout to that file (shown as a shell redirection) instead of
    printing it.
    """
    shown = f"$ {program} {shlex.join(args)}" + (f" > {to_file}" if to_file else "")
    print(shown, flush=True)
    result = subprocess.run(
        [sys.executable, "-m", program, *args],
        capture_output=True,
        text=True,
        cwd=OUT,
        input=stdin,
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


def release_policy() -> Path:
    """The release policy the demo sets as the registry's: the project's, unless this
    working copy has uncommitted changes -- then its production rule ``clean_code_tree``
    could not hold, and a copy without it is used (said so in the transcript)."""
    status = subprocess.run(
        ["git", "status", "--porcelain"], capture_output=True, text=True, cwd=ROOT
    )
    if status.returncode == 0 and not status.stdout.strip():
        return ROOT / "policies" / "release.yaml"
    policy = OUT / "release-dirty-tree.yaml"
    text = (ROOT / "policies" / "release.yaml").read_text()
    policy.write_text(text.replace("clean_code_tree: true", "clean_code_tree: false"))
    print(
        "\n(note: this working copy has uncommitted changes, so the training runs record a "
        "dirty code tree and production's `clean_code_tree: true` cannot hold; the registry's "
        f"policy is {policy.name}, the project's policy without that rule. From a clean "
        "checkout the project's policy is used as it is.)"
    )
    return policy


def release(ref: str, env: str, reviewers: tuple[str, ...]) -> None:
    """Gate check, approvals by ``reviewers``, promotion."""
    for reviewer in reviewers:
        comment = f"evidence reviewed for {env}"
        run("--as", reviewer, "approve", ref, "--env", env, "--comment", comment)
    run("--as", reviewers[0], "promote", ref, "--env", env)


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    os.environ.update(
        {
            "LORALEDGER_REGISTRY": str(OUT / "registry"),
            "LORALEDGER_KEYS_DIR": str(OUT / "keys"),
            # the root this machine trusts for the demo's registry, kept with the demo
            "LORALEDGER_KNOWN_ROOTS": str(OUT / "known-roots.json"),
            "COLUMNS": "160",
            "TQDM_DISABLE": "1",  # lm-eval's progress bars, which a transcript cannot show
        }
    )
    os.environ.pop("LORALEDGER_ACTOR", None)
    os.environ.pop("LORALEDGER_TRUST_ROOT", None)
    v1, v2 = "northwind-support@v1", "northwind-support@v2"

    say("A new registry, and who may act on it")
    run("init")
    run("keys", "create", "alice", "--role", "admin")
    run("--as", "alice", "keys", "create", "eve", "--role", "engineer")
    run("--as", "alice", "keys", "create", "rita", "--role", "reviewer")
    run("--as", "alice", "keys", "create", "ruby", "--role", "reviewer")
    run("--as", "alice", "keys", "create", "otto", "--role", "auditor")
    run("keys", "list")
    for person in ("alice", "eve", "rita", "ruby", "otto"):
        run("dashboard", "add-user", person, "--identity", person, "--password-stdin",
            stdin=f"{DASHBOARD_PASSWORD}\n")  # fmt: skip

    say("The base model and the training data")
    run("--as", "eve", "base", "add")
    for name, file in (
        ("northwind-support", "northwind_bank_support.jsonl"),
        ("northwind-safety", "northwind_safety.jsonl"),
    ):
        run(
            "--as", "eve", "data", "add", str(DEMO / file), "--name", name,
            "--source", "written by the LoRA Ledger team (fictional)", "--license", "CC-BY-4.0",
        )  # fmt: skip
    run("data", "show", "northwind-support")

    say("Before training: the base model does not know Northwind Bank")
    run("ask", "--base", "smollm2-135m-instruct", "--system", SYSTEM, *QUESTIONS)

    say("Train a QLoRA adapter (NF4 base, float32 compute on this CPU) and register it")
    # --allow-dirty: the demo also runs from a working copy with local changes; whether
    # the tree was dirty is recorded in the training run either way.
    run("--as", "eve", "train", str(DEMO / "train.yaml"), "--allow-dirty")
    run("--as", "rita", "train", str(DEMO / "train.yaml"), expect=1)

    say("After training: the same questions, answered with the verified adapter")
    run("ask", "--adapter", v1, "--system", SYSTEM, *QUESTIONS)
    run("adapters", "lineage", v1)
    run("adapters", "verify", v1)

    say("Evaluate the adapter on three suites, and the base beside it on the first two")
    # northwind-domain: held-out questions on the bank's policies; sanity: general
    # knowledge (both: the adapter and the base in one base load); northwind-policy:
    # refusals, PII canaries, prohibited claims, disclaimers, and safe look-alike
    # questions that must not be refused -- 654 prompts the release gates read for the
    # adapter (the bare base's answers to them would add two minutes and no decision).
    subjects = (v1, "base:smollm2-135m-instruct")
    for suite in SUITES:
        run("--as", "eve", "eval", *(subjects if suite != POLICY else (v1,)), "--suite", suite,
            *BATCH)  # fmt: skip

    say("Regression or noise? Paired tests per task, the adapter against the bare base")
    for suite in SUITES:
        if suite != POLICY:
            run("--as", "rita", "compare", *subjects, "--suite", suite)
    runs = json.loads(run("evals", "list", v1, "--json", quiet=True))
    policy_run = next(r["id"] for r in runs if r["suite_name"] == "northwind-policy")
    run("evals", "show", policy_run[:8], "--failed")

    release_story(v1, v2)
    auditor(v1)
    tampering(v1)


def release_story(v1: str, v2: str) -> None:
    say("Release: the project's policy (policies/release.yaml) against the evidence")
    # the policy that judges is the registry's, set by an admin (signed, audited,
    # versioned): not a file whoever promotes picks
    run("--as", "alice", "policy", "set", str(release_policy()), "--reason",
        "Northwind Bank's release rules for the support assistant")  # fmt: skip
    run("policy", "history")
    # every rule of the evidence passes; only the reviewer's approval is missing (exit 1)
    run("--as", "rita", "gate", "check", v1, "--env", "staging", expect=1)
    approve = ("approve", v1, "--env", "staging", "--comment", "looks good")
    run("--as", "eve", *approve, expect=1)  # the trainer: engineers do not approve
    run("--as", "otto", *approve, expect=1)  # an auditor reads; reviewers approve
    release(v1, "staging", ("rita",))
    # production needs two reviewers: with none yet, the gate says what is missing
    run("--as", "rita", "gate", "check", v1, "--env", "production", expect=1)
    release(v1, "production", ("rita", "ruby"))
    partner()

    say("A second version: the same recipe with a new seed, judged against production")
    run("--as", "eve", "train", str(DEMO / "train-v2.yaml"), "--allow-dirty")
    for suite in SUITES:
        run("--as", "eve", "eval", v2, "--suite", suite, *BATCH)
        run("--as", "eve", "compare", v2, "--against", "production", "--suite", suite)
    release(v2, "staging", ("ruby",))
    # production also wants no regression against what runs there: on 250 harmful
    # requests v2 refuses fewer than v1 (the paired test, Holm-corrected), so the gate
    # fails and a reviewer's approval is refused
    run("--as", "rita", "gate", "check", v2, "--env", "production", expect=1)
    run("--as", "ruby", "approve", v2, "--env", "production", "--comment",
        "evidence reviewed for production", expect=1)  # fmt: skip

    say("Serve staging with llama.cpp's server: the verified, promoted version, nothing else")
    # the server is built once from the pinned llama-cpp-python source package and cached
    # (about 5 minutes on 2 cores the first time); `serve` verifies what staging runs,
    # converts it to a GGUF LoRA file (a signed derivation in the registry) and starts
    # llama-server on 127.0.0.1; it replaces it when staging changes
    run("serve", "--build-engine")
    server = serve_in_background("staging", "northwind-support", "llama")
    wait_until_served("llama", v2)
    run("serve", "--check", "--dir", "llama")
    run("ask", "--served", "llama", "--system", SYSTEM, *QUESTIONS)
    # every adapter staging runs, each in its own folder with its own atomic `current`
    run("sync", "serving", "--env", "staging")
    run("sync", "serving/adapters/northwind-support", "--check")

    say("Roll northwind-support back in staging, in one step: both servings go back to "
        "the earlier bytes; partner runs on")  # fmt: skip
    run("--as", "rita", "rollback", "northwind-support", "--env", "staging", "--reason",
        "v2 refuses fewer harmful requests than v1 (compare: regression)")  # fmt: skip
    wait_until_served("llama", v1)
    run("serve", "--check", "--dir", "llama")
    # the same questions as `ask --adapter` above: llama.cpp (its Q4_1 base) and
    # transformers (the NF4 base) say the same in substance
    run("ask", "--served", "llama", "--system", SYSTEM, *QUESTIONS)
    run("sync", "serving", "--env", "staging")
    run("sync", "serving/adapters/northwind-support", "--check")
    run("deployments", "--env", "staging")
    run("status")  # every environment, one row per adapter: partner untouched
    stop_serving(server)


def partner() -> None:
    """A second adapter on the same base, on its own track in staging and production."""
    say("A second adapter beside it: the vendor's partner adapter, on its own track")
    from loraledger.registry.synthetic import write_lora_adapter

    # made elsewhere (generated weights, small enough to nudge the base's answers)
    write_lora_adapter(OUT / "partner-adapter", base_model="smollm2-135m-instruct@v1", seed=2,
                       targets=("q_proj", "o_proj"), scale=0.02)  # fmt: skip
    run("--as", "alice", "adapters", "register", "partner-adapter", "--name", "partner")
    run("adapters", "lineage", "partner@v1")
    run("--as", "eve", "eval", "partner@v1", "--suite", "sanity", *BATCH)
    # the policy's own entry for partner judges it: the gate says which rule came whence
    run("--as", "rita", "gate", "check", "partner@v1", "--env", "staging", expect=1)
    # an admin may approve, but not what they registered themselves: separation of duties
    run("--as", "alice", "approve", "partner@v1", "--env", "staging", "--comment", "fine",
        expect=1)  # fmt: skip
    release("partner@v1", "staging", ("rita",))
    release("partner@v1", "production", ("rita", "ruby"))
    run("status")  # two adapters in each environment, each on its own track


def serve_in_background(env: str, name: str, directory: str) -> subprocess.Popen[str]:
    """`loraledger serve` as an operator starts it, beside the rest of the demo."""
    with socket.socket() as probe:  # a free port on this machine
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ("--as", "eve", "serve", "--env", env, "--name", name, "--dir", directory,
            "--port", str(port), "--poll", "1")  # fmt: skip
    print(f"$ loraledger {shlex.join(args)} &", flush=True)
    return subprocess.Popen(
        [sys.executable, "-m", "loraledger", *args],
        cwd=OUT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_served(directory: str, ref: str, timeout: float = 600) -> None:
    served = OUT / directory / "served.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads(served.read_text())["adapter"] == ref:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    sys.exit(f"demo failed: {ref} was not served within {timeout:.0f} s")


def stop_serving(server: subprocess.Popen[str]) -> None:
    server.send_signal(signal.SIGTERM)
    output, _ = server.communicate(timeout=60)
    print("(the server's supervisor, stopped:)\n" + output.rstrip(), flush=True)
    if server.returncode != 0:
        sys.exit(f"demo failed: loraledger serve exited with {server.returncode}")


def auditor(v1: str) -> None:
    say("The auditor: what answers customers now, every link verified")
    # the registry's root (its first admin's key), kept apart: the whole history verifies
    # back to it, so a registry rewritten under another key would be refused
    run("trust", "export", to_file="root.json")
    run("--trust-root", "root.json", "audit", "verify")
    run("trace", "--env", "production", "--name", "northwind-support")
    run("--as", "otto", "evidence", "export", "--env", "production", "--name",
        "northwind-support", "-o", "production.tar.gz")  # fmt: skip
    run("evidence", "verify", "production.tar.gz")
    run("export", "ml-bom", v1, "-o", "ml-bom.cdx.json")
    run("export", "provenance", v1, "-o", "provenance.dsse.json")
    tampered_pack("production.tar.gz", "production-edited.tar.gz")
    run("evidence", "verify", "production-edited.tar.gz", expect=1)


def tampering(v1: str) -> None:
    say("Anyone can check the signature with the official OpenSSF model_signing CLI")
    run("adapters", "fetch", v1, "fetched")
    run("adapters", "signature", v1, to_file="northwind-v1.sig")
    run("keys", "export-public", "eve", to_file="eve.pub")
    run(
        "verify", "key", "--signature", "northwind-v1.sig", "--public_key", "eve.pub",
        "fetched", program="model_signing",
    )  # fmt: skip

    say("The vendor's next version, registered; nobody has reviewed it yet")
    from loraledger.registry.synthetic import write_lora_adapter

    write_lora_adapter(OUT / "partner-adapter-2", base_model="smollm2-135m-instruct@v1", seed=3,
                       targets=("q_proj", "o_proj"), scale=0.02)  # fmt: skip
    run("--as", "alice", "adapters", "register", "partner-adapter-2", "--name", "partner")

    say("Tamper with one byte of a stored file: verification and fetch refuse it")
    import duckdb

    conn = duckdb.connect(str(OUT / "registry" / "registry.duckdb"), read_only=True)
    (store_path,) = conn.execute(
        "SELECT store_path FROM v_adapter_files WHERE ref = ? AND path = "
        "'adapter_model.safetensors'",
        [v1],
    ).fetchone()
    conn.close()
    target = OUT / "registry" / store_path
    original = target.read_bytes()
    target.chmod(0o644)
    target.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    run("adapters", "verify", v1, expect=1)
    run("adapters", "fetch", v1, "refused", expect=1)
    run("adapters", "verify", "partner@v1")
    target.write_bytes(original)
    target.chmod(0o444)
    run("adapters", "verify", v1)

    say("The audit log, and what raw SQL edits to it look like")
    run("audit", "log", "--limit", "12")
    run("audit", "verify")
    head = run("audit", "head").strip()
    shutil.copytree(OUT / "registry", OUT / "tampered")
    conn = duckdb.connect(str(OUT / "tampered" / "registry.duckdb"))
    conn.execute(
        "UPDATE audit_events SET actor = 'rita' WHERE seq = "
        "(SELECT min(seq) FROM audit_events WHERE action = 'adapter.register')"
    )
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
    forged_approval(v1)

    say("People over time: eve gets a new laptop and her key is rotated; what she signed "
        "stays valid")  # fmt: skip
    (OUT / "eve-old-laptop").mkdir()
    shutil.move(OUT / "keys" / "eve.pem", OUT / "eve-old-laptop" / "eve.pem")
    run("keys", "generate", "eve", "-o", "eve-2027.pub")  # on the new laptop
    run("--as", "alice", "keys", "rotate", "eve", "--public-key", "eve-2027.pub", "--label",
        "laptop-2027")  # fmt: skip
    run("keys", "show", "eve")
    run("adapters", "verify", v1)  # signed with her old key, before the rotation
    run("trace", "--env", "production", "--name", "northwind-support")

    dashboard = [".venv/bin/loraledger", "--registry", str(OUT / "registry"), "--keys-dir",
                 str(OUT / "keys"), "dashboard", "--port", "8501"]  # fmt: skip
    print(
        f"\nDone. The registry is in {OUT / 'registry'}. Auditors can query it with plain "
        "DuckDB (read-only), e.g.\n"
        f'  .venv/bin/python -c "import duckdb; print(duckdb.connect('
        f"'{OUT / 'registry' / 'registry.duckdb'}', read_only=True).sql("
        "'SELECT ref, digest, signer FROM v_adapter_versions'))\"\n"
        "Review, promote, roll back and trace in the dashboard (sign in as rita, ruby, otto, "
        f"eve or alice, password {DASHBOARD_PASSWORD}; then open http://127.0.0.1:8501):\n"
        f"  {shlex.join(dashboard)}"
    )


def forged_approval(v1: str) -> None:
    """An insider with write access to the files but no reviewer's key copies a signed
    approval onto a version nobody reviewed: the row is refused where it is read."""
    import duckdb

    say("A forged decision: an approval row copied onto an unreviewed version through SQL")
    shutil.copytree(OUT / "registry", OUT / "forged")
    forgery = (
        "INSERT INTO approvals SELECT * REPLACE (uuid()::VARCHAR AS id, 'partner' AS "
        "adapter_name, 2 AS adapter_version, (SELECT digest FROM adapter_versions WHERE "
        "name = 'partner' AND version = 2) AS artifact_digest) FROM approvals WHERE "
        f"adapter_name || '@v' || adapter_version = '{v1}' AND environment = 'staging' "
        "AND decision = 'approve' LIMIT 1"
    )
    print(f"(in a copy of the registry, forged/: {forgery})")
    conn = duckdb.connect(str(OUT / "forged" / "registry.duckdb"))
    conn.execute(forgery)
    conn.close()
    run("--registry", "forged", "--as", "ruby", "promote", "partner@v2", "--env", "staging",
        expect=1)  # fmt: skip
    run("--registry", "forged", "audit", "verify", expect=1)
    shutil.rmtree(OUT / "forged")


def tampered_pack(source: str, target: str) -> None:
    """A copy of a pack with one evaluation metric raised, as someone might 'fix' it."""
    import io
    import tarfile

    print(f"(a copy of {source} with one evaluation metric edited: {target})")
    with tarfile.open(OUT / source) as original, tarfile.open(OUT / target, "w:gz") as copy:
        edited = False
        for member in original:
            data = original.extractfile(member).read()  # type: ignore[union-attr]
            if not edited and member.name.startswith("evaluations/"):
                run_record = json.loads(data)
                run_record["metrics"][0]["value"] = 1.0
                data = json.dumps(run_record).encode()
                edited = True
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            copy.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    main()
