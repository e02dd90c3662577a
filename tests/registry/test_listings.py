"""The paged listings the dashboard reads (registry/listings.py): filters are literal,
counts are of all matches, and a page holds at most ``limit`` rows in the stated order."""

from __future__ import annotations

from loraledger.registry import listings

from tests.conftest import ENGINEER
from tests.dashboard.conftest import Site, prepared, site  # noqa: F401  (fixtures)
from tests.harness.conftest import PLAIN, eval_registry  # noqa: F401  (fixture)


def test_versions_are_paged_and_filtered_literally(site: Site) -> None:
    registry = site.registry()
    every = listings.adapter_versions(registry, "", 0, 100)
    assert every.total == len(every.rows) >= 5
    first, second = (listings.adapter_versions(registry, "", n, 2) for n in (0, 2))
    assert [r["version"] for r in first.rows + second.rows] == [
        r["version"] for r in every.rows[:4]
    ]
    faq = listings.adapter_versions(registry, "faq-bot", 0, 10)
    assert sorted(r["version"] for r in faq.rows) == sorted(PLAIN)
    assert listings.adapter_versions(registry, "faq_bot", 0, 10).total == 0  # '_' is literal
    assert listings.adapter_versions(registry, "%", 0, 10).total == 0


def test_audit_filters_combine(site: Site) -> None:
    registry = site.registry()
    page = listings.audit_page(
        registry, actor=ENGINEER, action="adapter.register", subject_part="faq-bot",
        since=None, until=None, offset=0, limit=50,
    )  # fmt: skip
    assert page.total == 2 and {r["subject"] for r in page.rows} == {f"adapter:{r}" for r in PLAIN}
    seqs = [r["seq"] for r in listings.audit_page(
        registry, actor=None, action=None, subject_part=None, since=None, until=None,
        offset=0, limit=5,
    ).rows]  # fmt: skip
    assert seqs == sorted(seqs, reverse=True) and seqs[0] == registry.audit_head()[0]


def test_dataset_users_name_the_adapters_trained_on_it(site: Site) -> None:
    users = listings.dataset_users(site.registry(), "faq", 1)
    assert {u["adapter"] for u in users} >= set(PLAIN)
