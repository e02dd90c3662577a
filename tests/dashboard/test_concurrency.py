"""The dashboard in use while another process writes: a writer registers and evaluates
versions through the library while Chromium walks every page. No error reaches the
screen (lock waits stay behind the spinner) and nothing the writer did is lost."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import AUDITOR
from tests.dashboard.browser import CHROMIUM, chromium, dashboard, go, problems, signed_in
from tests.dashboard.conftest import Site, prepared, site  # noqa: F401  (fixtures)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"
    ),
]
WRITES = 4
WRITER = """
import sys
from pathlib import Path
from loraledger.harness.evaluate import EvalOptions, evaluate
from loraledger.registry import Registry
from loraledger.registry.keys import KeyStore
from loraledger.registry.synthetic import write_lora_adapter

keys, count = Path(sys.argv[2]), int(sys.argv[3])
registry = Registry.open(sys.argv[1], keys=KeyStore(keys))
for n in range(count):
    adapter = write_lora_adapter(registry.root.parent / f"load{n}", base_model="tiny@v1", hidden=64,
                                 layers=2, r=4, targets=("q_proj", "o_proj"), seed=100 + n)
    version = registry.adapters.register(adapter, "load", actor="eve")
    evaluate(registry, [version.ref], "sanity", actor="eve", options=EvalOptions(limit=2))
    print("wrote", version.ref, flush=True)
"""
PAGES = ("Adapter version", "Audit and trace", "Datasets", "Promote, roll back, retire", "Overview")


def test_pages_stay_clean_while_a_writer_registers_and_evaluates(site: Site) -> None:
    with dashboard(site) as url, chromium() as browser:
        page = signed_in(browser, url, AUDITOR)
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(site.address), str(site.keys), str(WRITES)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        visits = 0
        while writer.poll() is None or visits < len(PAGES):
            go(page, PAGES[visits % len(PAGES)])
            assert problems(page) == [], PAGES[visits % len(PAGES)]
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0
            visits += 1
        out, err = writer.communicate()
        assert writer.returncode == 0, err
    registry = site.registry()
    written = [v.ref for v in registry.adapters.list("load")]
    assert written == [f"load@v{n}" for n in range(1, WRITES + 1)]
    assert out.split() == [w for ref in written for w in ("wrote", ref)]
    for ref in written:
        assert [r.status for r in registry.evaluations.list(ref)] == ["complete"]
    assert registry.verify_audit().head_seq == registry.audit_head()[0]
    assert visits >= len(PAGES)
