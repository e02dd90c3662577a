"""An S3-compatible server for the tests and benchmarks, started and stopped by them.

No S3 server installs from the package registries this project's machines reach (MinIO,
Garage and SeaweedFS ship binaries or containers only), so this is moto's server mode
(``python -m moto.server``): an emulator of the S3 API that speaks real HTTP, started as
a separate process on 127.0.0.1 on a free port. The registry reaches it as it reaches
AWS: through obstore, with the endpoint, region and credentials in ``AWS_*`` variables.
moto keeps objects in memory and honours conditional writes (``If-None-Match``), which
the published checkpoints rely on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.postgres import free_port

BUCKET = "loraledger-tests"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    @property
    def environment(self) -> dict[str, str]:
        """What a user's shell holds to reach this server (moto takes any credentials)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test-only",
            "AWS_SECRET_ACCESS_KEY": "test-only",
        }

    def new_prefix(self) -> str:
        """An ``s3://`` URL nothing has been written under."""
        return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


@contextmanager
def running_s3() -> Iterator[S3Server]:
    """A moto S3 server with the tests' bucket, stopped afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT")
                with urllib.request.urlopen(request, timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.2)
        yield S3Server(endpoint)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
