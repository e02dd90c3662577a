"""Dashboard pages: time to first full render in Chromium on a large registry.

The registry is the governance benchmark's (``bench_governance.build``): 10,000 adapter
versions, 100,000 audit events, 1,000,000 per-sample evaluation records. The same pages
are timed on a registry a tenth the size in the same run, so the output reads as a ratio:
near 1 means a page does not slow down as the registry grows.

``loraledger dashboard`` runs as its own process on 127.0.0.1; Debian's Chromium, driven
by Playwright, signs in as the auditor (and, for the Review page, the reviewer) and opens
each page from the sidebar. A page counts as rendered when its heading is on screen,
Streamlit's run has finished (no status widget) and no element is stale. Each time is the
median of ``--repeat`` visits. The first one -- from opening the address through signing
in to the Overview, which verifies the whole audit chain on a server's first load -- is
reported on its own ("sign-in to overview (cold)"; it includes the sign-in library's
fixed 0.7 s pause before its form).

Target: every page < 1 s.

    .venv/bin/python benchmarks/bench_dashboard.py [--repeat 5] [--versions 10000]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from bench_governance import build, scale_arguments  # noqa: E402
from common import write_results  # noqa: E402
from loraledger.dashboard.accounts import ACCOUNTS_FILE, add_user  # noqa: E402

from tests.dashboard.browser import RENDERED, chromium, dashboard, go, signed_in  # noqa: E402
from tests.dashboard.conftest import PASSWORD, Site  # noqa: E402

PAGES = ("Adapter version", "Review", "Promote, roll back, retire", "Audit and trace", "Datasets")


def rendered(page: Any, title: str, started: float) -> float:
    page.get_by_role("heading", name=title).first.wait_for()
    page.wait_for_function(RENDERED, polling=10)
    return time.perf_counter() - started


def visit(page: Any, title: str) -> float:
    started = time.perf_counter()
    page.get_by_role("link", name=title).click()
    return rendered(page, title, started)


def measure(site: Site, ref: str, repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {}
    with dashboard(site) as url, chromium() as browser:
        started = time.perf_counter()
        auditor = signed_in(browser, url, "otto")  # the Overview's first, cold visit
        times["sign-in to overview (cold)"] = [time.perf_counter() - started]
        reviewer = signed_in(browser, url, "rita")
        for _ in range(repeat):
            for title in ("Overview", *PAGES):
                go(auditor, "Datasets" if title == "Overview" else "Overview")
                times.setdefault(title.lower(), []).append(visit(auditor, title))
            go(reviewer, "Review")
            field = reviewer.get_by_role("textbox", name="Version to review (NAME@vN)")
            field.fill(ref)
            started = time.perf_counter()
            field.press("Enter")
            reviewer.get_by_text("the staging gate").first.wait_for()
            times.setdefault("review (gate check)", []).append(
                rendered(reviewer, "Review", started)
            )
            field.fill("")
            field.press("Enter")
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    args = scale_arguments(__doc__.splitlines()[0])
    results: dict[str, dict[str, float]] = {}
    for label, scale in (("small", 10), ("full", 1)):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            registry, ref = build(
                root,
                versions=args.versions // scale,
                events=args.events // scale,
                samples=args.samples // args.versions,
            )
            for user in ("otto", "rita"):
                add_user(registry.root / ACCOUNTS_FILE, user, identity=user, password=PASSWORD)
            site = Site(registry.root, root / "keys", registry.root / ACCOUNTS_FILE,
                        root / "policy.yaml", registry.address)  # fmt: skip
            results[label] = measure(site, ref, args.repeat)
            print(f"{label}: {results[label]}", flush=True)
    full, small = results["full"], results["small"]
    print(
        f"\nTime to first full render in Chromium, median of {args.repeat} "
        f"(full: {args.versions} versions, {args.events} audit events, {args.samples} eval "
        "samples; peer: the same a tenth the size):"
    )
    print(f"{'page':<28}{'full':>10}{'small':>10}{'full/small':>12}  target")
    ratios = {}
    for name in full:
        verdict = "< 1 s" + (" (met)" if full[name] < 1 else " (NOT met)")
        ratios[name] = full[name] / small[name]
        print(
            f"{name:<28}{full[name] * 1000:>8.0f}ms{small[name] * 1000:>8.0f}ms"
            f"{ratios[name]:>11.2f}x  {verdict}"
        )
    write_results(
        "bench_dashboard",
        args,
        {"versions": args.versions, "repeat": args.repeat, **results, "full_vs_small": ratios},
    )


if __name__ == "__main__":
    main()
