"""Writing a file so that a reader (or a crash) never sees half of it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from loraledger.paths import replaceable


def write_atomically(path: Path, data: bytes | str, *, mode: int | None = None) -> Path:
    """Write ``data`` beside ``path`` under a temporary name, then rename it into place
    (with permission bits ``mode`` when given, set before anything is written). A
    directory, FIFO, socket or device at ``path`` is refused, never replaced."""
    replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.partial-{uuid.uuid4().hex[:12]}"
    try:
        if mode is not None:
            temporary.touch(mode=mode)
            temporary.chmod(mode)
        temporary.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


__all__ = ["write_atomically"]
