"""Sign-in: nothing of the registry is shown before it.

With an OpenID Connect provider configured for Streamlit (``[auth]`` in
``.streamlit/secrets.toml``), Streamlit's own ``st.login`` signs people in and the
provider's e-mail address picks the dashboard user. Otherwise ``streamlit-authenticator``
checks a user name and bcrypt-hashed password from the accounts file. Either way the user
maps to a registry identity, whose role the library checks on every call and whose key
signs that user's approvals.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from loraledger.errors import LedgerError

from . import ui
from .accounts import Accounts, load_accounts

COOKIE_NAME = "loraledger_dashboard"


def sign_in() -> ui.User:
    """The signed-in user; renders the sign-in form and stops the run until there is one."""
    try:
        accounts = load_accounts(ui.config().accounts_file())
    except LedgerError as error:
        st.error(str(error))
        st.stop()
    username = _oidc_user(accounts) if _oidc_configured() else _password_user(accounts)
    current = st.session_state.get("ledger_user")
    if isinstance(current, ui.User) and current.username == username:
        return current
    identity = ui.active_identity(accounts.identity_of(username))
    user = ui.User(
        username=username,
        display_name=accounts.data.users[username].name,
        identity=identity.name,
        role=identity.role,
    )
    st.session_state["ledger_user"] = user
    return user


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError, st.errors.StreamlitSecretNotFoundError):
        return False


def _oidc_user(accounts: Accounts) -> str:
    if not st.user.is_logged_in:
        st.title("LoRA Ledger")
        st.button("Sign in", on_click=st.login, type="primary")
        st.stop()
    email = str(st.user.get("email") or "")
    username = accounts.user_with_email(email)
    if username is None:
        st.error(
            f"No dashboard user has the e-mail address {email!r}; an admin adds one with "
            "`loraledger dashboard add-user USER --identity NAME --email ADDRESS`."
        )
        st.button("Sign out", on_click=st.logout)
        st.stop()
    with st.sidebar:
        st.button("Sign out", on_click=st.logout)
    return username


def _password_user(accounts: Accounts) -> str:
    import streamlit_authenticator as stauth

    authenticator: Any = stauth.Authenticate(
        accounts.credentials(),
        COOKIE_NAME,
        accounts.data.cookie_key,
        accounts.data.cookie_expiry_days,
        auto_hash=False,
    )
    authenticator.login(
        location="main",
        fields={
            "Form name": "Sign in to LoRA Ledger",
            "Username": "User name",
            "Password": "Password",
            "Login": "Sign in",
        },
    )
    status = st.session_state.get("authentication_status")
    if status is False:
        st.error("Wrong user name or password.")
    if not status:
        st.stop()
    with st.sidebar:
        authenticator.logout("Sign out", "sidebar", callback=_forget_user)
    return str(st.session_state["username"])


def _forget_user(_details: Any = None) -> None:
    st.session_state.pop("ledger_user", None)
