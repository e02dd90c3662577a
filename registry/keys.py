"""Private keys on disk and the small signatures the registry makes with them.

Private keys never enter the registry: each identity's EC (P-256) key is a PEM file in
the key directory (``~/.loraledger/keys`` by default, ``LORALEDGER_KEYS_DIR`` or
``--keys-dir`` to move it), written with mode 0600 and optionally encrypted with a
passphrase (``LORALEDGER_PASSPHRASE`` supplies it non-interactively).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from loraledger.errors import SigningKeyError, VerificationError

KEYS_DIR_ENV = "LORALEDGER_KEYS_DIR"
PASSPHRASE_ENV = "LORALEDGER_PASSPHRASE"


def default_keys_dir() -> Path:
    return Path(os.environ.get(KEYS_DIR_ENV) or Path.home() / ".loraledger" / "keys")


def public_pem(key: ec.EllipticCurvePublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


@functools.lru_cache(maxsize=4096)  # a pure function of the text, asked per checkpoint
def fingerprint(public_key_pem: str) -> str:
    """sha256 over the DER SubjectPublicKeyInfo, hex."""
    key = load_public_key(public_key_pem)
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def load_public_key(pem: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except ValueError as error:
        raise VerificationError(f"a registered public key is unreadable ({error})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise VerificationError("a registered public key is not an elliptic-curve key")
    return key


@functools.lru_cache(maxsize=16384)
def verify_signature(public_key_pem: str, signature_b64: str, message: bytes) -> bool:
    """Whether ``signature_b64`` is ``public_key_pem``'s ECDSA P-256 / SHA-256 signature
    over ``message``. A pure check, so its answers are remembered: a long-lived process
    (the dashboard, `serve`'s supervisor, a status read of every environment's history)
    does not verify the same signed record twice."""
    try:
        load_public_key(public_key_pem).verify(
            base64.b64decode(signature_b64), message, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class SigningKey:
    """A loaded private key and the file it came from (model-signing reads the file)."""

    name: str
    path: Path
    private_key: ec.EllipticCurvePrivateKey
    passphrase: bytes | None

    @property
    def public_key_pem(self) -> str:
        return public_pem(self.private_key.public_key())

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key_pem)

    def sign(self, message: bytes) -> str:
        """Base64 ECDSA-SHA256 signature over ``message``."""
        return base64.b64encode(self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))).decode(
            "ascii"
        )


def _check_private(path: Path, mode: int) -> None:
    """Refuse a private key others could read, or one in a directory others could write
    (where they could swap it), as ssh does; the message gives the chmod that fixes it."""
    if not stat.S_ISREG(mode):
        raise SigningKeyError(f"the private key {path} is not a regular file; replace it")
    if mode & 0o077:
        raise SigningKeyError(
            f"the private key {path} is readable or writable by others (mode "
            f"{stat.S_IMODE(mode):04o}); run `chmod 600 {path}`, and if others could read "
            "it, make a new key"
        )
    directory = path.parent
    dir_mode = directory.stat().st_mode
    if dir_mode & 0o022:
        raise SigningKeyError(
            f"the key directory {directory} is writable by others (mode "
            f"{stat.S_IMODE(dir_mode):04o}), who could replace a key; run `chmod 700 "
            f"{directory}`"
        )


class KeyStore:
    """The directory of private key files, one ``NAME.pem`` per identity.

    ``prompt`` is asked for the passphrase of an encrypted key when neither the caller
    nor ``LORALEDGER_PASSPHRASE`` supplied one (the CLI prompts on a terminal).
    """

    def __init__(
        self, directory: Path | None = None, prompt: Callable[[str], str] | None = None
    ) -> None:
        self.directory = directory or default_keys_dir()
        self.prompt = prompt

    def path_for(self, name: str) -> Path:
        return self.directory / f"{name}.pem"

    def create(self, name: str, passphrase: bytes | None = None) -> SigningKey:
        """Generate a P-256 key and write it with mode 0600; refuses to overwrite."""
        path = self.path_for(name)
        if path.exists():
            raise SigningKeyError(
                f"a private key for {name!r} already exists at {path}; pass --reuse-key to "
                "register it, or choose another --keys-dir"
            )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        tmp = path.with_suffix(f".pem.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return SigningKey(name, path, key, passphrase)

    def load(self, name: str, passphrase: bytes | None = None) -> SigningKey:
        path = self.path_for(name)
        if passphrase is None and os.environ.get(PASSPHRASE_ENV):
            passphrase = os.environ[PASSPHRASE_ENV].encode("utf-8")
        try:
            status = path.stat()
        except FileNotFoundError:
            raise SigningKeyError(
                f"no private key for {name!r} at {path}; act as an identity whose key is on "
                f"this machine, or point --keys-dir / {KEYS_DIR_ENV} at its key directory"
            ) from None
        _check_private(path, status.st_mode)
        data = path.read_bytes()
        if passphrase is None and self.prompt is not None and b"ENCRYPTED" in data:
            passphrase = self.prompt(f"Passphrase for {name}'s key ({path})").encode("utf-8")
        try:
            key = serialization.load_pem_private_key(data, password=passphrase)
        except TypeError:
            raise SigningKeyError(
                f"the private key at {path} is encrypted; set {PASSPHRASE_ENV} to its passphrase"
            ) from None
        except ValueError as error:
            raise SigningKeyError(
                f"cannot read the private key at {path} ({error}); check the passphrase "
                f"({PASSPHRASE_ENV}) and the file"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SigningKeyError(
                f"the key at {path} is not an elliptic-curve key; model-signing needs EC "
                "(P-256/384/521)"
            )
        return SigningKey(name, path, key, passphrase)
