"""Whether a process of this machine still runs."""

from __future__ import annotations

import os
from pathlib import Path


def running(pid: int) -> bool:
    """Whether process ``pid`` runs: it exists (another user's counts) and has not ended
    -- an ended process its parent has not yet reaped (a zombie) does not run."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc here: it exists
    return state not in ("Z", "X")


__all__ = ["running"]
