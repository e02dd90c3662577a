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

    bundle_path = scratch / "bundle.sig"
    key_path = scratch / "signer.pub"
    bundle_path.write_bytes(bundle)
    key_path.write_text(public_key_pem, encoding="ascii")
    try:
        (
            verifying.Config()
            .use_elliptic_key_verifier(public_key=key_path)
            .set_hashing_config(_hashing_config())
            .verify(directory, bundle_path)
        )
    except Exception as error:  # model-signing raises ValueError and library errors alike
        if "Signature mismatch" in str(error):
            raise VerificationError(
                f"files do not match the signature ({_describe_mismatch(directory, bundle)})"
            ) from None
        reason = str(error) or type(error).__name__
        raise VerificationError(
            f"signature verification failed: the bundle does not verify with the signer's "
            f"registered public key ({reason})"
        ) from None
    return Manifest.from_bundle(bundle)


def _describe_mismatch(directory: Path, bundle: bytes) -> str:
    """A readable list of changed, missing and extra files (model-signing's own message
    prints raw digest bytes)."""
    actual = {
        p.relative_to(directory).as_posix(): sha256_file(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }
    return describe_differences(Manifest.from_bundle(bundle).files, actual) or "contents differ"
