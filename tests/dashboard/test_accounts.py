"""The sign-in accounts file: bcrypt hashes only, validated, written atomically."""

from __future__ import annotations

import stat
from pathlib import Path

import bcrypt
import pytest
from loraledger.dashboard.accounts import add_user, load_accounts

from loraledger.errors import Conflict, InputError, NotFound, UsageError


def test_add_user_stores_a_bcrypt_hash_only(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    accounts = add_user(path, "rita", identity="rita", password="long enough secret")
    text = path.read_text()
    assert "long enough secret" not in text
    stored = accounts.data.users["rita"].password
    assert bcrypt.checkpw(b"long enough secret", stored.encode())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_accounts(path)
    assert again.identity_of("rita") == "rita" and len(again.data.cookie_key) == 64
    assert again.credentials()["usernames"]["rita"]["password"] == stored


def test_refusals(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    with pytest.raises(UsageError, match="at least 8 characters"):
        add_user(path, "rita", identity="rita", password="short")
    with pytest.raises(UsageError, match="user name 'Rita!'"):
        add_user(path, "Rita!", identity="rita", password="long enough secret")
    assert not path.exists()  # nothing half-written
    add_user(path, "rita", identity="rita", password="long enough secret")
    before = path.read_bytes()
    with pytest.raises(Conflict, match="pass --replace"):
        add_user(path, "rita", identity="rita", password="another secret!")
    assert path.read_bytes() == before
    add_user(path, "rita", identity="rita", password="another secret!", replace=True)
    assert path.read_bytes() != before
    with pytest.raises(NotFound, match="no dashboard user 'bob'"):
        load_accounts(path).identity_of("bob")


def test_a_broken_file_is_named_with_its_field(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    with pytest.raises(NotFound, match="loraledger dashboard add-user"):
        load_accounts(path)
    add_user(path, "rita", identity="rita", password="long enough secret")
    path.write_text(path.read_text().replace("$2b$", "plain"))
    with pytest.raises(InputError, match=r"users.rita.password"):
        load_accounts(path)
