"""What "deployed" means for a serving system: a bundle on disk, and a loaded model.

``sync(registry, env, DIR)`` materialises the environment's current version into ``DIR``::

    DIR/current -> releases/<digest>            (a symlink, swapped atomically)
    DIR/releases/<digest>/adapter/...           the adapter files, verified as they were copied
    DIR/releases/<digest>/signature.sig         the OpenSSF model-signing bundle
    DIR/releases/<digest>/release.json          version, digest, signer and public key, base
                                                identity, quantization, training run
    DIR/deployment.json                         which deployment of which environment this is

A release folder is written aside (``.staging-*``) and renamed into place complete; then
the ``current`` link is replaced in one ``rename``, so a reader sees the old bundle or the
new one, never half of either. A release's bytes depend on the version alone, so after a
rollback ``sync`` puts back exactly the previous bytes (the folder is reused when it still
checks out, rewritten otherwise).

``sync_environment(registry, env, DIR)`` does that for every adapter the environment runs,
one bundle per name, each with its own ``current``::

    DIR/adapters/<name>/current, releases/, deployment.json     as above, per adapter name
    DIR/environment.json                        the names synced, their deployments

A name the environment no longer runs (retired) loses its ``current`` link (its release
folders stay), so a server watching it stops loading it.

``check(DIR)`` re-hashes what is there against the signed manifest and verifies the
signature with the public key recorded in ``release.json`` -- offline, without the
registry -- and reports any drift.

``load_deployed(registry, env)`` returns the current version of an environment as a ready
peft model on its recorded base and quantization, verified first.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraledger.registry import Registry
from loraledger.registry.models import Deployment

from loraledger.atomic import write_atomically
from loraledger.errors import InputError, NothingDeployed, VerificationError
from loraledger.paths import output_directory

CURRENT = "current"
RELEASES = "releases"
ADAPTERS = "adapters"
ENVIRONMENT_FILE = "environment.json"


@dataclass(frozen=True)
class SyncResult:
    deployment: Deployment
    release: Path
    reused: bool


def sync(
    registry: Registry, environment: str, directory: Path, name: str | None = None
) -> SyncResult:
    """Make ``directory`` hold the bundle of what the environment runs of adapter
    ``name`` (None: of the one adapter it runs), atomically."""
    output_directory(directory)
    link = directory / CURRENT
    if link.exists() and not link.is_symlink():
        raise InputError(
            f"{CURRENT!r} in it is a real directory or file, not the link sync maintains; move "
            "it away (sync never deletes what it did not make)",
            path=directory,
        )
    current = registry.deployments.serving(environment, name)
    if current is None:
        runs = f"no version of {name}" if name else "nothing"
        raise NothingDeployed(f"{environment} runs {runs}; promote a version first")
    directory.mkdir(parents=True, exist_ok=True)
    releases = directory / RELEASES
    releases.mkdir(exist_ok=True)
    release = releases / current.artifact_digest
    reused = release.is_dir() and not check_release(release)
    if not reused:
        staging = directory / f".staging-{uuid.uuid4().hex[:12]}"
        try:
            _write_release(registry, current, staging)
            if release.exists():
                retired = directory / f".retired-{uuid.uuid4().hex[:12]}"
                os.replace(release, retired)
                shutil.rmtree(retired, ignore_errors=True)
            os.replace(staging, release)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    _swap_link(directory / CURRENT, Path(RELEASES) / current.artifact_digest)
    write_atomically(
        directory / "deployment.json",
        json.dumps(current.model_dump(mode="json"), indent=2, sort_keys=True) + "\n",
    )
    return SyncResult(deployment=current, release=release, reused=reused)


@dataclass(frozen=True)
class EnvironmentSync:
    environment: str
    synced: tuple[SyncResult, ...]  # one per adapter name the environment runs
    taken_out: tuple[str, ...]  # names it no longer runs, whose `current` was removed


def sync_environment(registry: Registry, environment: str, directory: Path) -> EnvironmentSync:
    """Make ``directory/adapters/NAME`` hold the bundle of each adapter ``environment``
    runs (each by :func:`sync`), and take out the names it no longer runs."""
    output_directory(directory)
    if (directory / CURRENT).is_symlink() or (directory / CURRENT).exists():
        raise InputError(
            f"holds one adapter's bundle ({CURRENT!r}); sync that adapter into it with --name "
            "NAME, or the whole environment into another directory",
            path=directory,
        )
    running = registry.deployments.running(environment)
    if not running:
        raise NothingDeployed(f"{environment} runs nothing; promote a version first")
    tracks = directory / ADAPTERS
    synced = tuple(sync(registry, environment, tracks / name, name=name) for name in running)
    taken_out = []
    for old in sorted(tracks.iterdir()):
        if old.name not in running and (old / CURRENT).is_symlink():
            (old / CURRENT).unlink()
            (old / "deployment.json").unlink(missing_ok=True)
            taken_out.append(old.name)
    manifest = {
        "environment": environment,
        "adapters": {
            r.deployment.name: {
                "adapter": r.deployment.adapter,
                "digest": r.deployment.artifact_digest,
                "deployment_id": r.deployment.id,
                "deployment_seq": r.deployment.seq,
            }
            for r in synced
        },
    }
    write_atomically(
        directory / ENVIRONMENT_FILE, json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    )
    return EnvironmentSync(environment, synced, tuple(taken_out))


def check(directory: Path) -> list[str]:
    """Drift of ``directory``'s current bundle from its signed manifest ([] when none)."""
    link = directory / CURRENT
    if not link.is_symlink() and not link.is_dir():
        raise InputError(f"has no {CURRENT!r} bundle; run `loraledger sync` first", path=directory)
    return check_release(link.resolve())


def check_release(release: Path) -> list[str]:
    from loraledger.registry.signing import verify_directory

    try:
        info = json.loads((release / "release.json").read_text())
        bundle = (release / "signature.sig").read_bytes()
    except (OSError, ValueError) as error:
        return [f"{release.name}: release.json or signature.sig unreadable ({error})"]
    with tempfile.TemporaryDirectory(prefix="loraledger-check-") as scratch:
        try:
            verify_directory(
                release / "adapter", bundle, info["signer_public_key"], scratch=Path(scratch)
            )
        except VerificationError as error:
            return [f"{info.get('adapter', release.name)}: {error}"]
    return []


def check_against(registry: Registry, directory: Path) -> Deployment:
    """The deployment ``directory`` serves (its ``deployment.json``) must be the one its
    environment runs in ``registry`` now, in a log that still holds the audit head that
    record committed to; returns it. Raises naming what differs."""
    from . import witness

    try:
        served = Deployment.model_validate_json((directory / witness.DEPLOYMENT_FILE).read_bytes())
    except (OSError, ValueError) as error:
        raise InputError(
            f"has no readable {witness.DEPLOYMENT_FILE} ({str(error).splitlines()[0]}); run "
            "`loraledger sync` again",
            path=directory,
        ) from None
    witness.check(registry, witness.of_deployment(served, f"{directory}/deployment.json"))
    current = registry.deployments.current(served.environment, served.name)
    if current is None or current.id != served.id:
        now = (
            f"{current.adapter} (deployment #{current.seq})"
            if current
            else f"no version of {served.name}"
        )
        raise VerificationError(
            f"{directory} serves {served.adapter} (deployment #{served.seq} of "
            f"{served.environment}), but {served.environment} now runs {now}; run "
            f"`loraledger sync {directory} --env {served.environment} --name {served.name}`"
        )
    _check_bundle_is(registry, directory, current)
    return current


def _check_bundle_is(registry: Registry, directory: Path, deployment: Deployment) -> None:
    """``directory``'s current bundle must be the deployment's version as its registrant
    signed it: the bundle's signed digest is the deployment's, and the key it verifies
    with is the registrant's registered key -- not a key the bundle brought along
    (``release.json`` names one, which the offline check has to take on trust)."""
    from loraledger.registry.keys import fingerprint
    from loraledger.registry.manifest import Manifest

    release = (directory / CURRENT).resolve()
    problems = check_release(release)
    if problems:
        raise VerificationError("; ".join(problems))
    try:
        info = json.loads((release / "release.json").read_text())
        signed = Manifest.from_bundle((release / "signature.sig").read_bytes()).digest
        key = fingerprint(info["signer_public_key"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise VerificationError(f"{release.name}: release.json unreadable ({error})") from None
    version = registry.adapters.get(deployment.adapter)
    if signed != deployment.artifact_digest:
        raise VerificationError(
            f"{directory}/current holds a bundle signed over digest {signed[:16]}…, but "
            f"{deployment.environment} runs {deployment.adapter} ({deployment.artifact_digest[:16]}"
            f"…); run `loraledger sync {directory} --env {deployment.environment}`"
        )
    if key != version.signer_key_fingerprint:
        raise VerificationError(
            f"{directory}/current is signed with key {key[:16]}…, not with the key "
            f"{version.signer} registered {version.ref} with ({version.signer_key_fingerprint[:16]}"
            "…): its files were re-signed by someone else; sync it again"
        )


def load_deployed(
    registry: Registry, environment: str, name: str | None = None
) -> tuple[Any, Any, Deployment]:
    """What the environment runs of adapter ``name`` (None: of the one adapter it runs)
    as a ready peft model, and its tokenizer."""
    from loraledger.trainer.inference import load_verified

    current = registry.deployments.serving(environment, name)
    if current is None:
        runs = f"no version of {name}" if name else "nothing"
        raise NothingDeployed(f"{environment} runs {runs}; promote a version first")
    model, tokenizer = load_verified(registry, adapter=current.adapter)
    return model, tokenizer, current


def _write_release(registry: Registry, deployment: Deployment, staging: Path) -> None:
    version = registry.adapters.get(deployment.adapter)
    if version.digest != deployment.artifact_digest:
        raise VerificationError(
            f"{deployment.adapter} has digest {version.digest[:16]}…, not the deployed "
            f"{deployment.artifact_digest[:16]}…; the registry was tampered with"
        )
    staging.mkdir()
    registry.adapters.fetch(version.ref, staging / "adapter")  # verifies the very copy
    (staging / "signature.sig").write_bytes(registry.adapters.signature(version.ref))
    run = registry.adapters.training_run(version.ref)
    signed_with = registry.identities.get(version.signer).key(version.signer_key_fingerprint)
    if signed_with is None:  # (the fetch above verified it with that very key)
        raise VerificationError(f"{version.ref}: its signer never held the key that signed it")
    base = registry.base_models.get(run.base_ref) if run else None
    info = {
        "adapter": version.ref,
        "digest": version.digest,
        "signer": version.signer,
        "signer_key_fingerprint": version.signer_key_fingerprint,
        "signer_public_key": signed_with.public_key_pem,
        "base": None
        if base is None
        else {"ref": base.ref, "digest": base.digest, "origin": base.origin},
        "base_model_name": version.base_model_name,
        "quantization": run.quantization.model_dump(mode="json") if run else None,
        "compute_dtype": run.compute_dtype if run else None,
        "training_run": run.id if run else None,
        "code_commit": run.code.commit if run else None,
        "datasets": [d.model_dump(mode="json") for d in run.datasets] if run else [],
    }
    (staging / "release.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def _swap_link(link: Path, target: Path) -> None:
    temporary = link.parent / f".{link.name}-{uuid.uuid4().hex[:12]}"
    os.symlink(target, temporary)
    try:
        os.replace(temporary, link)
    finally:
        temporary.unlink(missing_ok=True)  # (gone once it replaced the link)


__all__ = [
    "EnvironmentSync", "SyncResult", "check", "check_release", "load_deployed", "sync",
    "sync_environment",
]  # fmt: skip
