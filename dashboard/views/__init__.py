"""The dashboard's pages, one script each, run only by ``st.navigation`` in ``app.py``
after sign-in. The folder is deliberately not named ``pages/``: Streamlit serves every
script in a ``pages/`` folder beside the entry script as a page of its own, reachable by
its address without the entry script (and so without sign-in) ever running."""
# No script is named after an installed package (hence dataset_versions.py): a script's
# folder comes first on sys.path when it runs as the main script (AppTest does that).
