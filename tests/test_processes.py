"""Whether a process runs: alive yes; ended but not yet reaped (a zombie) no; gone no."""

from __future__ import annotations

import subprocess
import sys
import time

from loraledger.processes import running


def test_a_zombie_does_not_run() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert running(child.pid)
    finally:
        child.kill()
    deadline = time.monotonic() + 10
    while running(child.pid) and time.monotonic() < deadline:  # ended, not reaped yet
        time.sleep(0.05)
    assert not running(child.pid)
    assert child.poll() is not None  # reaped now
    assert not running(child.pid)
