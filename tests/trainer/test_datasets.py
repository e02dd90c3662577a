"""Dataset validation errors name file, line and field; provenance is stable."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from loraledger.registry.datasets import record_sha256
from loraledger.registry.merkle import merkle_root
from loraledger.trainer.datasets import analyse, validate_license

from loraledger.errors import InputError

CHAT = {
    "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello, how can I help?"},
    ]
}
PC = {"prompt": "What is 2+2?", "completion": "4"}


def write(path: Path, *lines: object) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_files_that_are_not_regular_are_refused_before_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "named pipe"), (Path("/dev/zero"), "character device"),
                       (tmp_path, "directory")):  # fmt: skip
        with pytest.raises(InputError, match=f"is a {kind}"):
            analyse(path)


def test_a_line_without_end_is_refused_at_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "endless.jsonl"
    with path.open("wb") as f:  # 64 MiB without a newline: never read whole
        f.truncate(64 * 2**20)
    with pytest.raises(InputError, match=":1: is longer than 1,024 bytes"):
        analyse(path, max_line_bytes=1024)


def test_chat_dataset(tmp_path: Path) -> None:
    other = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Rates?"},
            {"role": "assistant", "content": "See the rate sheet."},
        ]
    }
    path = write(tmp_path / "d.jsonl", CHAT, other, CHAT)
    analysis = analyse(path)
    assert analysis.format == "chat"
    assert analysis.record_lines == (1, 2, 3)
    assert analysis.record_hashes == (
        record_sha256(CHAT),
        record_sha256(other),
        record_sha256(CHAT),
    )
    assert analysis.duplicate_lines == (3,)
    assert analysis.size_bytes == path.stat().st_size
    assert analysis.pii == {}


def test_prompt_completion_dataset(tmp_path: Path) -> None:
    assert analyse(write(tmp_path / "d.jsonl", PC)).format == "prompt-completion"


def test_record_hash_ignores_key_order_and_spacing(tmp_path: Path) -> None:
    a = analyse(write(tmp_path / "a.jsonl", '{"prompt": "x", "completion": "y"}'))
    b = analyse(write(tmp_path / "b.jsonl", '{"completion":"y","prompt":"x"}'))
    assert a.record_hashes == b.record_hashes
    assert a.file_sha256 != b.file_sha256


def test_merkle_root_is_stable(tmp_path: Path) -> None:
    records = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(25)]
    root = merkle_root(list(analyse(write(tmp_path / "a.jsonl", *records)).record_hashes))
    again = merkle_root(list(analyse(write(tmp_path / "b.jsonl", *records)).record_hashes))
    assert root == again
    # Pinned values: changing record hashing or tree construction must be deliberate, since
    # it would orphan every proof made against registered datasets.
    assert record_sha256(records[0]) == (
        "455e375a64434211c375bf83d652e6ec1e99335cf75054852fd3062f46cadde2"
    )
    assert root == "3e3d5cc209e2cfb56ddbad7e3d1b9bd1c0bace13e678b28efb499ef72766782b"


def test_pii_counts_and_lines_never_values(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.jsonl",
        PC,
        {"prompt": "Email me at jane.doe@example.com", "completion": "Noted."},
        {
            "prompt": "My card is 4111 1111 1111 1111",
            "completion": "Never share it. Call (415) 555-2671 or write to help@bank.example.org",
        },
    )
    analysis = analyse(path)
    assert {k: (v.count, v.lines) for k, v in analysis.pii.items()} == {
        "email": (2, (2, 3)),
        "payment_card": (1, (3,)),
        "phone": (1, (3,)),
    }
    assert "jane" not in analysis.model_dump_json()


ERRORS = [
    ("empty", [], None, None, "is empty"),
    ("not json", [PC, "{oops"], 2, None, "invalid JSON"),
    ("not an object", [PC, "[1]"], 2, None, "must be a JSON object"),
    ("no format keys", [{"text": "x"}], 1, None, "neither 'messages'"),
    ("mixed formats", [PC, CHAT], 2, None, "a chat record in a prompt-completion dataset"),
    ("missing field", [{"prompt": "x"}], 1, "completion", "Field required"),
    ("wrong type", [{"prompt": "x", "completion": 3}], 1, "completion", "valid string"),
    (
        "empty content",
        [{"messages": [{"role": "user", "content": ""}]}],
        1,
        "messages[0].content",
        "at least 1 character",
    ),
    (
        "unknown role",
        [{"messages": [{"role": "wizard", "content": "x"}]}],
        1,
        "messages[0].role",
        "unknown role; use system, user or assistant",
    ),
    ("messages not a list", [{"messages": "hi"}], 1, "messages", "valid list"),
    ("no messages", [{"messages": []}], 1, "messages", "at least 1 item"),
    ("blank line", [PC, "", PC], 2, None, "blank line"),
    ("duplicate key", [PC, '{"prompt": "a", "prompt": "b", "completion": "c"}'], 2, None,
     "has the key 'prompt' twice"),
    ("NaN", [PC, '{"prompt": "a", "completion": "b", "score": NaN}'], 2, None, "has NaN"),
    ("1e999", [PC, '{"prompt": "a", "completion": "b", "score": 1e999}'], 2, None,
     "too large for a float"),
    ("5,000 digits", [PC, '{"prompt": "a", "completion": "b", "n": ' + "9" * 5000 + "}"], 2,
     None, "integer of 5,000 digits"),
    ("5,000 deep", [PC, '{"prompt": "a", "completion": "b", "x": ' + "[" * 5000 + "]" * 5000
     + "}"], 2, None, "nested too deeply"),
    ("100,000 deep", [PC, "[" * 100_000 + "]" * 100_000], 2, None, "nested too deeply"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "lines", "line", "field", "message"), ERRORS, ids=[e[0] for e in ERRORS]
)
def test_errors_name_file_line_and_field(
    tmp_path: Path,
    case: str,
    lines: list[object],
    line: int | None,
    field: str | None,
    message: str,
) -> None:
    path = write(tmp_path / "d.jsonl", *lines) if lines else tmp_path / "d.jsonl"
    if not lines:
        path.write_text("")
    with pytest.raises(InputError) as caught:
        analyse(path)
    where = f"{path}:{line}" if line else str(path)
    if field:
        where += f": field '{field}'"
    assert str(caught.value).startswith(where + ": "), str(caught.value)
    assert message in str(caught.value)
    assert (caught.value.line, caught.value.field) == (line, field)


def test_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(json.dumps(PC).encode() + b"\n" + b'{"prompt": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"d.jsonl:2: is not UTF-8"):
        analyse(path)


def test_line_size_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", PC, {"prompt": "x" * 500, "completion": "y"})
    with pytest.raises(InputError, match=r":2: is longer than 100 bytes, the limit for one line"):
        analyse(path, max_line_bytes=100)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="dataset file does not exist"):
        analyse(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="is a directory"):
        analyse(tmp_path)


def test_git_provenance(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "data").mkdir()
    path = write(repo / "data" / "d.jsonl", PC)
    assert analyse(path).git.untracked  # type: ignore[union-attr]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "data"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    clean = analyse(path).git
    assert clean is not None
    assert (clean.commit, clean.path, clean.modified, clean.untracked) == (
        head,
        "data/d.jsonl",
        False,
        False,
    )
    write(path, PC, {"prompt": "p", "completion": "c"})
    assert analyse(path).git.modified  # type: ignore[union-attr]
    assert analyse(write(tmp_path / "outside.jsonl", PC)).git is None


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("mit", "MIT"),
        ("CC-BY-4.0", "CC-BY-4.0"),
        ("LicenseRef-internal", "LicenseRef-internal"),
        ("Apache-2.0 OR MIT", "Apache-2.0 OR MIT"),
    ],
)
def test_licenses(given: str, normal: str) -> None:
    assert validate_license(given) == normal


@pytest.mark.parametrize("bad", ["Foo-1.0", "MIT AND (", ""])
def test_bad_licenses(bad: str) -> None:
    with pytest.raises(InputError, match="--license"):
        validate_license(bad)
