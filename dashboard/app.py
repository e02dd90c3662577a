"""The dashboard's entry script: ``loraledger dashboard`` runs it with ``streamlit run``.

Sign-in first (nothing else renders before it), then the pages. Every page is a thin
skin over the library: see :mod:`loraledger.dashboard.ui`.
"""

from __future__ import annotations

import streamlit as st
from loraledger.dashboard import ui
from loraledger.dashboard.auth import sign_in

st.set_page_config(page_title="LoRA Ledger", layout="wide")
pages = [
    st.Page("views/overview.py", title="Overview", url_path="overview", default=True),
    st.Page("views/version.py", title="Adapter version", url_path="version"),
    st.Page("views/review.py", title="Review", url_path="review"),
    st.Page("views/release.py", title="Promote, roll back, retire", url_path="release"),
    st.Page("views/audit.py", title="Audit and trace", url_path="audit"),
    st.Page("views/dataset_versions.py", title="Datasets", url_path="datasets"),
]
# The page is chosen from the address before sign-in, so a link to a page survives it;
# the menu stays hidden, and nothing runs, until someone is signed in.
signed_in = isinstance(st.session_state.get("ledger_user"), ui.User)
page = st.navigation(pages, position="sidebar" if signed_in else "hidden")
user = sign_in()
if not signed_in:
    st.rerun()  # now with the menu
with st.sidebar:
    st.caption(
        f"Signed in as **{user.display_name}** — registry identity `{user.identity}` "
        f"({user.role.value})"
    )
page.run()
