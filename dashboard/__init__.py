"""The Streamlit dashboard (loraledger.dashboard). Built in issue #7."""
