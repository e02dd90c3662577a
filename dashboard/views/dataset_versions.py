"""Datasets: versions, licenses, PII findings by kind and line (never the values), and
the adapter versions trained on each (with where they run now)."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from loraledger.dashboard import ui
from loraledger.registry import listings


def render() -> None:
    st.title("Datasets")
    registry = ui.read(ui.registry)
    name_part = st.text_input("Name contains", key="datasets_filter")
    total = ui.read(listings.datasets_page, registry, name_part, 0, 0).total
    offset, limit = ui.page_controls(total, "datasets_page")
    page = ui.read(listings.datasets_page, registry, name_part, offset, limit)
    st.dataframe(pd.DataFrame(page.rows), hide_index=True, width="stretch")
    choices = [row["dataset"] for row in page.rows]
    if not choices:
        st.info("No dataset registered: `loraledger data add FILE --license SPDX --source TEXT`.")
        return
    chosen = st.selectbox("Dataset version", choices, key="dataset_pick")
    dataset = ui.read(registry.datasets.get, chosen)
    st.header(dataset.ref)
    st.markdown(
        f"**License** {dataset.license} · **Source** {dataset.source} · **Records** "
        f"{dataset.record_count} ({dataset.duplicate_count} duplicates) · **Format** "
        f"{dataset.format}  \n**File** {dataset.file_name}, sha256 `{dataset.file_sha256}`  \n"
        f"**Merkle root** `{dataset.merkle_root}`"
    )
    st.subheader("PII findings (kinds and lines only)")
    if dataset.pii:
        st.dataframe(
            pd.DataFrame(
                [
                    {"kind": kind, "count": f.count, "lines": ", ".join(map(str, f.lines))}
                    for kind, f in sorted(dataset.pii.items())
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.write("None found.")
    st.subheader("Adapter versions trained on it")
    users = ui.read(listings.dataset_users, registry, dataset.name, dataset.version)
    if users:
        st.dataframe(pd.DataFrame(users), hide_index=True, width="stretch")
    else:
        st.write("No adapter version was trained on this dataset version.")


ui.run_page(render)
