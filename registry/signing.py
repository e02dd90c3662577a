"""Signing and verifying adapter directories in the OpenSSF model-signing format.

The registry uses the ``model-signing`` package itself, with an elliptic-curve key, so a
bundle it writes verifies with the official CLI::

    model_signing verify key --signature BUNDLE --public_key PUB.pem DIR

Every file is hashed and signed (no default ignore list), and the bundle is kept outside
the signed directory. ``model_signing`` is imported inside the functions: it takes half
a second to import and read-only commands never need it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loraledger.errors import VerificationError

from .keys import SigningKey
from .manifest import Manifest, describe_differences
from .store import sha256_file


def _hashing_config(ignore: list[Path] | None = None) -> Any:
    from model_signing import hashing

    # Sign every file: model-signing would otherwise leave git metadata out, and a
    # stored-but-unsigned file is a hole. (adapter_dir refuses git metadata anyway.)
    return hashing.Config().set_ignored_paths(paths=ignore or [], ignore_git_paths=False)


def hash_directory(directory: Path, *, ignore: list[Path] | None = None) -> Manifest:
    """sha256 of every file under ``directory`` (model-signing's hashing, in parallel) and
    the digest over them, computed as model-signing's subject digest: sha256 over the raw
    per-file digests in path order. ``ignore``: paths left out (e.g. ``__pycache__``)."""
    manifest = _hashing_config(ignore).hash(directory)
    files = {str(rd.identifier): rd.digest.digest_hex for rd in manifest.resource_descriptors()}
    root = hashlib.sha256(b"".join(bytes.fromhex(files[p]) for p in sorted(files)))
    return Manifest(
        subject_name=directory.name,
        digest=root.hexdigest(),
        files=files,
        serialization=dict(manifest.serialization_type),
    )


class _Hashed:
    """A hashing configuration for model-signing that hands it the manifest of files
    already hashed -- as they were copied into the store, or as they are copied out --
    instead of reading every byte a second time. model-signing still builds the payload,
    signs it, checks the signature and compares the manifests itself."""

    def __init__(self, name: str, files: dict[str, str]) -> None:
        from model_signing import manifest
        from model_signing._hashing.hashing import Digest  # pinned (constraints.txt)

        serialization = manifest.SerializationType.from_args(dict(SERIALIZATION))
        self.manifest = manifest.Manifest(
            name,
            [
                serialization.new_item(path, Digest("sha256", bytes.fromhex(digest)))
                for path, digest in sorted(files.items())
            ],
            serialization,
        )

    def hash(self, model_path: Any, *, files_to_hash: Any = None) -> Any:
        return self.manifest

    def add_ignored_paths(self, *, model_path: Any, paths: Any) -> None:
        raise VerificationError(
            "the bundle leaves files out of the signature (ignore_paths); LoRA Ledger signs "
            "every file, so it was not made by LoRA Ledger"
        )


# What model-signing records for LoRA Ledger's hashing (_hashing_config): whole files,
# sha256, no symlinks, nothing ignored.
SERIALIZATION = {"method": "files", "hash_type": "sha256", "allow_symlinks": False}


def sign_files(name: str, files: dict[str, str], key: SigningKey, bundle_path: Path) -> Manifest:
    """Sign ``files`` ({relative path: sha256}, hashed as they were copied) as the model
    directory ``name``; write the bundle to ``bundle_path``. The bundle is the one
    :func:`sign_directory` writes for a directory ``name`` holding those files."""
    from model_signing import signing

    password: Any = key.passphrase
    (
        signing.Config()
        .use_elliptic_key_signer(private_key=key.path, password=password)
        .set_hashing_config(_Hashed(name, files))  # type: ignore[arg-type]
        .sign(Path(name), bundle_path)
    )
    return Manifest.from_bundle(bundle_path.read_bytes())


def verify_files(
    files: dict[str, str], bundle: bytes, public_key_pem: str, *, scratch: Path
) -> Manifest:
    """Check that ``bundle``, signed by ``public_key_pem``, signs exactly ``files``
    ({relative path: sha256 as hashed now}); raise :class:`VerificationError` naming what
    differs."""
    from model_signing import verifying

    signed = Manifest.from_bundle(bundle)
    config = verifying.Config().set_hashing_config(_Hashed(signed.subject_name, files))  # type: ignore[arg-type]
    _verify(
        config, scratch, bundle, public_key_pem, scratch,
        lambda: describe_differences(signed.files, files),
    )  # fmt: skip
    return signed


def sign_directory(directory: Path, key: SigningKey, bundle_path: Path) -> Manifest:
    """Sign every file under ``directory``; write the bundle to ``bundle_path``."""
    from model_signing import signing

    password: Any = key.passphrase  # model-signing hands it to cryptography, which wants bytes
    (
        signing.Config()
        .use_elliptic_key_signer(private_key=key.path, password=password)
        .set_hashing_config(_hashing_config())
        .sign(directory, bundle_path)
    )
    return Manifest.from_bundle(bundle_path.read_bytes())


def verify_directory(
    directory: Path, bundle: bytes, public_key_pem: str, *, scratch: Path
) -> Manifest:
    """Re-hash ``directory`` and check it against ``bundle`` signed by ``public_key_pem``.

    Raises :class:`VerificationError` with model-signing's reason (changed, missing or
    extra files; a signature that does not match the key).
    """
    from model_signing import verifying

    config = verifying.Config().set_hashing_config(_hashing_config())
    _verify(
        config, directory, bundle, public_key_pem, scratch,
        lambda: _describe_mismatch(directory, bundle),
    )  # fmt: skip
    return Manifest.from_bundle(bundle)


def _verify(
    config: Any,
    directory: Path,
    bundle: bytes,
    public_key_pem: str,
    scratch: Path,
    differences: Callable[[], str],
) -> None:
    """model-signing's verification of ``directory`` against ``bundle`` with ``config``
    (its hashing) and the signer's key; its failures as :class:`VerificationError`
    (``differences()`` says which files differ)."""
    bundle_path = scratch / "bundle.sig"
    key_path = scratch / "signer.pub"
    bundle_path.write_bytes(bundle)
    key_path.write_text(public_key_pem, encoding="ascii")
    try:
        config.use_elliptic_key_verifier(public_key=key_path).verify(directory, bundle_path)
    except VerificationError:
        raise
    except Exception as error:  # model-signing raises ValueError and library errors alike
        if "Signature mismatch" in str(error):
            raise VerificationError(
                f"files do not match the signature ({differences() or 'contents differ'})"
            ) from None
        reason = str(error) or type(error).__name__
        raise VerificationError(
            f"signature verification failed: the bundle does not verify with the signer's "
            f"registered public key ({reason})"
        ) from None


def _describe_mismatch(directory: Path, bundle: bytes) -> str:
    """A readable list of changed, missing and extra files (model-signing's own message
    prints raw digest bytes)."""
    actual = {
        p.relative_to(directory).as_posix(): sha256_file(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }
    return describe_differences(Manifest.from_bundle(bundle).files, actual) or "contents differ"
