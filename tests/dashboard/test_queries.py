"""The dashboard's paged listings: filters are literal, counts are of all matches, and a
page holds at most ``limit`` rows in the stated order."""

from __future__ import annotations

from loraledger.dashboard import queries

from tests.conftest import ENGINEER
from tests.dashboard.conftest import Site, prepared, site  # noqa: F401  (fixtures)
from tests.harness.conftest import PLAIN


def test_versions_are_paged_and_filtered_literally(site: Site) -> None:
    registry = site.registry()
    every = queries.adapter_versions(registry, "", 0, 100)
    assert every.total == len(every.rows) >= 5
    first, second = (queries.adapter_versions(registry, "", n, 2) for n in (0, 2))
    assert [r["version"] for r in first.rows + second.rows] == [
        r["version"] for r in every.rows[:4]
    ]
    faq = queries.adapter_versions(registry, "faq-bot", 0, 10)
    assert sorted(r["version"] for r in faq.rows) == sorted(PLAIN)
    assert queries.adapter_versions(registry, "faq_bot", 0, 10).total == 0  # '_' is literal
    assert queries.adapter_versions(registry, "%", 0, 10).total == 0


def test_audit_filters_combine(site: Site) -> None:
    registry = site.registry()
    page = queries.audit_page(
        registry, actor=ENGINEER, action="adapter.register", subject_part="faq-bot",
        since=None, until=None, offset=0, limit=50,
    )  # fmt: skip
    assert page.total == 2 and {r["subject"] for r in page.rows} == {f"adapter:{r}" for r in PLAIN}
    seqs = [r["seq"] for r in queries.audit_page(
        registry, actor=None, action=None, subject_part=None, since=None, until=None,
        offset=0, limit=5,
    ).rows]  # fmt: skip
    assert seqs == sorted(seqs, reverse=True) and seqs[0] == registry.audit_head()[0]


def test_dataset_users_name_the_adapters_trained_on_it(site: Site) -> None:
    users = queries.dataset_users(site.registry(), "faq", 1)
    assert {u["adapter"] for u in users} >= set(PLAIN)
