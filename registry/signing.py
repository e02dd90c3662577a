"""Signing and verifying adapter directories in the OpenSSF model-signing format.

The registry uses the ``model-signing`` package itself, with an elliptic-curve key, so a
bundle it writes verifies with the official CLI::

    model_signing verify key --signature BUNDLE --public_key PUB.pem DIR

Every file is hashed and signed (no default ignore list), and the bundle is kept outside
the signed directory. ``model_signing`` is imported inside the functions: it takes half
a second to import and read-only commands never need it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from loraledger.errors import VerificationError

from .keys import SigningKey, load_public_key
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
    """A hashing configuration for model-signing's signer that hands it the manifest of
    files already hashed (as they were copied into the store) instead of reading every
    byte a second time; model-signing still builds the payload and signs it."""

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


def verify_files(files: dict[str, str], bundle: bytes, public_key_pem: str) -> Manifest:
    """Check that ``bundle``, signed by ``public_key_pem``, signs exactly ``files``
    ({relative path: sha256 as hashed now}); raise :class:`VerificationError` naming what
    failed. The checks are those model-signing's key verifier makes (1.1.1:
    ``_signing/sign_ec_key.py`` ``Verifier._verify_bundle`` and ``_signing/signing.py``
    ``dsse_payload_to_manifest``): the key hint, the ECDSA signature over the DSSE PAE of
    the in-toto payload, the statement type, the subject digest over the resources, the
    resources against the files. Made here, without importing model-signing (half a
    second of every verify); tests/registry/test_signing.py holds the two to the same
    verdicts, and the official CLI verifies every bundle LoRA Ledger writes."""
    signed = Manifest.from_bundle(bundle)
    try:
        document = json.loads(bundle)
        envelope = document["dsseEnvelope"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        payload_type = str(envelope["payloadType"])
        (signature,) = envelope["signatures"]
        sig = base64.b64decode(signature["sig"], validate=True)
        hint = (document.get("verificationMaterial") or {}).get("publicKey", {}).get("hint")
        statement = json.loads(payload)
        resources = statement["predicate"]["resources"]
        root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources))
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as error:
        raise VerificationError(
            f"the signature bundle is not a model-signing v1.0 bundle ({error}); the stored "
            "signature is damaged or was replaced"
        ) from None
    key = load_public_key(public_key_pem)
    spki = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if hint and hint != hashlib.sha256(spki).hexdigest():
        _refuse("the bundle names another public key")
    if payload_type != IN_TOTO_PAYLOAD:
        _refuse(f"payload type {payload_type!r} is not {IN_TOTO_PAYLOAD}")
    pae = b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)
    try:
        key.verify(sig, pae, ec.ECDSA(_EC_HASHES.get(key.curve.name, hashes.SHA256)()))
    except InvalidSignature:
        _refuse("Signature is invalid")
    if statement.get("_type") != IN_TOTO_STATEMENT:
        _refuse(f"statement type {statement.get('_type')!r} is not {IN_TOTO_STATEMENT}")
    if root.hexdigest() != signed.digest:
        _refuse("the subject digest is not the digest over the signed files")
    if signed.serialization != SERIALIZATION:
        raise VerificationError(
            f"the bundle was made with serialization {signed.serialization}, not LoRA "
            "Ledger's (every file, whole, sha256); it was not made by LoRA Ledger"
        )
    if signed.files != files:
        raise VerificationError(
            f"files do not match the signature ({describe_differences(signed.files, files)})"
        )
    return signed


IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT = "https://in-toto.io/Statement/v1"
# the hash model-signing signs with on each curve (sign_ec_key.get_ec_key_hash)
_EC_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


def _refuse(reason: str) -> NoReturn:
    raise VerificationError(
        "signature verification failed: the bundle does not verify with the signer's "
        f"registered public key ({reason})"
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
    """Re-hash ``directory`` and check it against ``bundle`` signed by ``public_key_pem``,
    with model-signing's own verifier (as the official CLI does).

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
        _refuse(str(error) or type(error).__name__)
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
