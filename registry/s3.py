"""A team's artifact store in S3-compatible object storage: ``s3://bucket/prefix``.

Objects are read and written through obstore (the Python binding of the Rust
``object_store`` crate that Apache Arrow and DataFusion use). Credentials, region and
endpoint come from the environment as every AWS tool reads them (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``
for a non-AWS server, ``AWS_ALLOW_HTTP=true`` for one without TLS), never from the URL.

Two writers on two machines cannot corrupt an object: artifacts are content addressed
(the key is the sha256 of the bytes, hashed by the writer before upload, and every read
hashes again), and the small records that are not (the published audit checkpoints) are
written with a conditional create (``If-None-Match: *``), which the server refuses when
the key exists.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from loraledger.errors import StorageError, UsageError

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

SCHEME = "s3"
_CHUNK = 1 << 22


def is_s3_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(f"{SCHEME}://")


def check_s3_url(url: str) -> str:
    """``url`` without a trailing slash if it names a bucket (and a prefix), with no
    credentials or query in it."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME or not parts.hostname:
        raise UsageError(f"{url!r} is not an object-store URL; write it as s3://BUCKET/PREFIX")
    if parts.username or parts.password:
        raise UsageError(
            f"the store URL {url!r} holds credentials; take them out and set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an AWS profile) instead"
        )
    if parts.query or parts.fragment:
        raise UsageError(
            f"the store URL {url!r} has a query; give endpoint and region as AWS_ENDPOINT_URL "
            "and AWS_REGION"
        )
    return url.rstrip("/")


class S3Objects:
    """The objects under one ``s3://bucket/prefix``, by key relative to the prefix.

    No connection is held between calls beyond obstore's HTTP pool; every failure the
    server or network gives is a :class:`StorageError` naming the URL."""

    def __init__(self, url: str) -> None:
        self.url = check_s3_url(url)
        try:
            import obstore.store
        except ImportError:
            raise UsageError(
                f"the store {self.url} is in S3, and this installation has no S3 client; "
                "install it with: pip install 'loraledger[s3]'"
            ) from None
        # client options given here replace those of the environment: carry AWS_ALLOW_HTTP
        client: ClientConfig = {"connect_timeout": timedelta(seconds=10)}
        if os.environ.get("AWS_ALLOW_HTTP", "").lower() in ("1", "true", "yes"):
            client["allow_http"] = True
        retry: RetryConfig = {
            "max_retries": 3,
            "retry_timeout": timedelta(seconds=30),
            "backoff": {
                "init_backoff": timedelta(milliseconds=100),
                "max_backoff": timedelta(seconds=5),
                "base": 2,
            },
        }
        try:
            self._store: Any = obstore.store.S3Store.from_url(
                self.url, client_options=client, retry_config=retry
            )
        except Exception as error:  # obstore raises its own classes and ValueError
            raise self._refusal(error, "open") from None

    @property
    def location(self) -> str:
        return self.url

    def where(self, key: str) -> str:
        return f"{self.url}/{key}"

    def exists(self, key: str) -> bool:
        import obstore

        try:
            obstore.head(self._store, key)
        except FileNotFoundError:
            return False
        except Exception as error:
            raise self._refusal(error, "look up", key) from None
        return True

    def create(self, key: str, source: Path | bytes) -> bool:
        """Write ``source`` (a file or bytes) at ``key`` unless the key exists (a
        conditional create); whether it was written. A large file is uploaded in parts,
        where S3 has no conditional create: only content-addressed keys are written so."""
        import obstore
        from obstore.exceptions import AlreadyExistsError

        try:
            obstore.put(self._store, key, source, mode="create")
        except AlreadyExistsError:
            return False
        except Exception as error:
            raise self._refusal(error, "write", key) from None
        return True

    def read(self, key: str) -> bytes | None:
        """The object's bytes; None when there is none."""
        import obstore

        try:
            return bytes(obstore.get(self._store, key).bytes())
        except FileNotFoundError:
            return None
        except Exception as error:
            raise self._refusal(error, "read", key) from None

    def download(self, key: str, target: Path) -> str | None:
        """Write the object at ``key`` into the new file ``target`` and return the sha256 of
        the bytes written (None, and no file, when there is no such object)."""
        import obstore

        digest = hashlib.sha256()
        try:
            result = obstore.get(self._store, key)
            with target.open("xb") as out:
                for chunk in result.stream(min_chunk_size=_CHUNK):
                    view = memoryview(chunk)
                    digest.update(view)
                    out.write(view)
        except FileNotFoundError:
            target.unlink(missing_ok=True)
            return None
        except OSError as error:
            target.unlink(missing_ok=True)
            if error.filename:
                raise StorageError.from_os_error(error, "downloading an artifact") from None
            raise self._refusal(error, "read", key) from None
        except Exception as error:
            target.unlink(missing_ok=True)
            raise self._refusal(error, "read", key) from None
        return digest.hexdigest()

    def keys(self, prefix: str, after: str | None = None) -> Iterator[str]:
        """The keys under ``prefix`` in ascending order (those after ``after`` only)."""
        import obstore

        try:
            for batch in obstore.list(self._store, prefix, offset=after, chunk_size=1000):
                for meta in batch:
                    yield str(meta["path"])
        except Exception as error:
            raise self._refusal(error, "list", prefix) from None

    def delete(self, keys: list[str]) -> None:
        import obstore

        try:
            obstore.delete(self._store, keys)
        except Exception as error:
            raise self._refusal(error, "delete", keys[0] if keys else "") from None

    def _refusal(self, error: Exception, doing: str, key: str = "") -> StorageError:
        from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

        where = self.where(key) if key else self.url
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        # no keys in the environment: obstore asked the instance metadata service for them
        if "/latest/api/token" in first or "credential" in first.lower():
            advice = (
                "no credentials were found for it: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) on this machine"
            )
        elif isinstance(error, (PermissionDeniedError, UnauthenticatedError)):
            advice = (
                "give this machine's credentials (AWS_ACCESS_KEY_ID / AWS_PROFILE) access to "
                "the bucket"
            )
        else:
            advice = (
                "check that the bucket exists and the server answers (AWS_ENDPOINT_URL, "
                "AWS_REGION), then run the command again"
            )
        return StorageError(f"could not {doing} {where}: {first}; {advice}")
