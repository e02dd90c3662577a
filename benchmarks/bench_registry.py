"""Registry speed, as ratios against peers measured in the same run on the same files.

1. `loraledger adapters register` (validate, copy into the store hashing each byte as it
   is copied, model-signing signature, commit) and `adapters register --link` (hard
   links instead of the copy: one read of each byte, no write) against the official
   `model_signing sign key` CLI signing the same ~1 GB adapter directory.
   Target: register within 1.2x of the signer's time.
2. `loraledger adapters verify` (re-hash the stored files, check the signature and the
   records) against the official `model_signing verify key` CLI on a fetched copy of the
   same version. Target: at least as fast (peer time / our time >= 1.0).
3. `loraledger audit verify` on a registry with 100,000 audit events. Target: < 5 s.

Each timing is the median of --repeat runs of the whole command (process start
included), after one untimed run to warm the page cache. ``--quick``: 20 MB, one run,
2,000 events. Usage:

    .venv/bin/python benchmarks/bench_registry.py [--gigabytes 1.0] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import add_arguments, write_results
from loraledger.registry import Registry, Role
from loraledger.registry.audit import NewEvent
from loraledger.registry.keys import KeyStore
from loraledger.registry.synthetic import write_lora_adapter

HERE = Path(__file__).resolve().parent
LEDGER = [sys.executable, "-m", "loraledger"]
MODEL_SIGNING = [sys.executable, "-m", "model_signing"]


def timed(command: list[str], env: dict[str, str], repeat: int) -> float:
    """Median wall time of ``command`` over ``repeat`` runs, after one warm-up run."""
    times = []
    for attempt in range(repeat + 1):
        started = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
        if attempt:
            times.append(elapsed)
    return statistics.median(times)


def main() -> None:
    parser = add_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    if args.quick:
        args.gigabytes, args.repeat, args.events = 0.02, 1, 2_000

    work = Path(tempfile.mkdtemp(prefix="loraledger-bench-", dir=os.environ.get("TMPDIR")))
    env = {
        **os.environ,
        "LORALEDGER_REGISTRY": str(work / "reg"),
        "LORALEDGER_KEYS_DIR": str(work / "keys"),
        "LORALEDGER_ACTOR": "eve",
    }
    # Both sides as installed: with their modules' bytecode cached (pip compiles the
    # peer's on install; LoRA Ledger's, installed editable, are compiled by the warm-up
    # run), not compiled from source on every run as PYTHONDONTWRITEBYTECODE would have it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        registry = Registry.init(work / "reg", keys=KeyStore(work / "keys"))
        registry.identities.create("admin", Role.ADMIN, actor=None)
        registry.identities.create("eve", Role.ENGINEER, actor="admin")

        adapter = write_lora_adapter(
            work / "adapter", r=64, hidden=2048, target_bytes=int(args.gigabytes * 1e9)
        )
        files = sorted(str(p) for p in adapter.iterdir())
        size = sum(Path(f).stat().st_size for f in files)
        print(
            f"adapter: {len(files)} files, {size / 1e9:.2f} GB; {os.cpu_count()} CPUs; "
            f"median of {args.repeat} runs after a warm-up"
        )

        signed = work / "official.sig"
        sign = timed(
            [
                *MODEL_SIGNING, "sign", "key", "--no-ignore-git-paths",
                "--private_key", str(KeyStore(work / "keys").path_for("eve")),
                "--signature", str(signed), str(adapter),
            ],
            env,
            args.repeat,
        )  # fmt: skip
        register = timed(
            [*LEDGER, "adapters", "register", str(adapter), "--name", "big"], env, args.repeat
        )
        linked = timed(
            [*LEDGER, "adapters", "register", str(adapter), "--name", "big", "--link"],
            env,
            args.repeat,
        )
        ref = registry.adapters.list("big")[-1].ref

        verify = timed([*LEDGER, "adapters", "verify", ref], env, args.repeat)
        fetched = work / "fetched"
        registry.adapters.fetch(ref, fetched)
        (work / "big.sig").write_bytes(registry.adapters.signature(ref))
        (work / "eve.pub").write_text(registry.identities.get("eve").public_key_pem)
        official = timed(
            [
                *MODEL_SIGNING, "verify", "key", "--no-ignore-git-paths",
                "--signature", str(work / "big.sig"),
                "--public_key", str(work / "eve.pub"),
                str(fetched),
            ],
            env,
            args.repeat,
        )  # fmt: skip

        key = registry.act_as("eve")
        started = time.perf_counter()
        with registry.change(key) as change:
            batch = [
                NewEvent("eve", "bench.event", f"bench:{i}", {"i": i, "digest": "ab" * 32})
                for i in range(args.events)
            ]
            change.events.extend(batch)
        fill = time.perf_counter() - started
        audit_cli = timed([*LEDGER, "audit", "verify"], env, args.repeat)
        audit_api = registry.verify_audit().seconds
        events = registry.verify_audit().events

        results = {
            "bytes": size,
            "files": len(files),
            "repeat": args.repeat,
            "model_signing_sign_s": sign,
            "register_s": register,
            "register_time_vs_model_signing_sign": register / sign,
            "register_link_s": linked,
            "register_link_time_vs_model_signing_sign": linked / sign,
            "verify_s": verify,
            "model_signing_verify_s": official,
            "verify_speed_vs_model_signing": official / verify,
            "audit_events": events,
            "audit_fill_s": fill,
            "audit_verify_cli_s": audit_cli,
            "audit_verify_library_s": audit_api,
        }
        register_ratio = results["register_time_vs_model_signing_sign"]
        link_ratio = results["register_link_time_vs_model_signing_sign"]
        verify_ratio = results["verify_speed_vs_model_signing"]
        rows = [
            ("model_signing sign key (peer)", sign, f"{size / sign / 1e9:.2f} GB/s"),
            (
                "adapters register",
                register,
                f"{size / register / 1e9:.2f} GB/s  {register_ratio:.2f}x the signer's time "
                "(copies every byte)",
            ),
            (
                "adapters register --link",
                linked,
                f"{size / linked / 1e9:.2f} GB/s  {link_ratio:.2f}x the signer's time "
                "(target <= 1.2x)",
            ),
            ("model_signing verify key (peer)", official, f"{size / official / 1e9:.2f} GB/s"),
            (
                "adapters verify",
                verify,
                f"{size / verify / 1e9:.2f} GB/s  {verify_ratio:.2f}x its speed (target >= 1.0x)",
            ),
            (f"audit verify, {events} events (CLI)", audit_cli, "target < 5 s"),
            ("audit verify (library call only)", audit_api, ""),
        ]
        for label, seconds, note in rows:
            print(f"{label:<40} {seconds:8.3f} s   {note}")
        write_results("bench_registry", args, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
