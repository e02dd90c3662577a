"""``loraledger serve``: llama.cpp's server for what an environment runs, and nothing else."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ._app import settings

if TYPE_CHECKING:
    from loraledger.policies.llama_cpp import Engine

DIRECTORY = Path("serving-llama")


def serve(
    ctx: typer.Context,
    env: str = typer.Option(None, "--env", help="The environment whose current version to serve."),
    name: str = typer.Option(
        None, "--name", help="The adapter to serve, when the environment runs several."
    ),
    directory: Path = typer.Option(
        DIRECTORY, "--dir", help="Where the verified copies, GGUF files and served.json live."
    ),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="The port on 127.0.0.1."),
    poll: float = typer.Option(
        10.0, "--poll", min=0.1, help="Seconds between checks of the registry and the files."
    ),
    threads: int = typer.Option(
        None, "--threads", min=1, max=1024, help="llama.cpp's CPU threads."
    ),
    check: bool = typer.Option(
        False, "--check", help="Only compare the running server with what --env runs now."
    ),
    build_engine: bool = typer.Option(
        False, "--build-engine", help="Only fetch and build llama.cpp's server (once, cached)."
    ),
) -> None:
    """Serve what --env runs with llama.cpp's server on 127.0.0.1 -- verified, converted to
    GGUF with a signed derivation, replaced on promotion or rollback, stopped on drift --
    until interrupted; or --check a running one; or --build-engine."""
    from loraledger.errors import UsageError, VerificationError
    from loraledger.policies import llama_cpp, llama_server

    if build_engine:
        typer.echo(f"llama.cpp {llama_cpp.VERSION} is built: {_engine().server}")
        return
    if check:
        problems = llama_server.check(settings(ctx).open(), directory)
        if problems:
            raise VerificationError("; ".join(problems))
        served = llama_server.Served.model_validate_json(
            (directory / llama_server.SERVED_FILE).read_bytes()
        )
        typer.echo(
            f"{served.url} serves {served.adapter} (deployment #{served.deployment_seq} of "
            f"{served.environment}, what it runs now): adapter GGUF sha256 "
            f"{served.adapter_gguf_sha256[:16]}… derived from digest {served.adapter_digest[:16]}… "
            f"(derivation {served.adapter_derivation[:8]}), base GGUF "
            f"{served.base_gguf_sha256[:16]}…"
        )
        return
    if env is None:
        raise UsageError("name the environment with --env ENV (or pass --check or --build-engine)")
    options = settings(ctx)
    registry = options.open()
    _engine()  # built before anything is verified: the first time takes minutes
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    llama_server.serve(
        registry,
        env,
        directory,
        actor=options.actor,
        port=port,
        poll=poll,
        threads=threads,
        stop=stop,
        report=lambda line: typer.echo(line),
        name=name,
    )
    typer.echo(f"stopped serving {env}")


def _engine() -> Engine:
    from loraledger.errors import EngineError
    from loraledger.policies import llama_cpp

    try:
        return llama_cpp.engine(build=False)
    except EngineError:
        typer.echo(
            f"building llama.cpp's server from llama-cpp-python {llama_cpp.VERSION}'s source, "
            f"once (about 5 minutes on 2 cores; log: {llama_cpp.home() / 'build.log'})",
            err=True,
        )
        return llama_cpp.engine()
