"""Every kind of bad adapter directory is refused with a message naming what is wrong."""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loraledger.registry import Registry
from loraledger.registry.adapter_dir import (
    AdapterDirectory,
    Limits,
    check_safetensors,
    read_adapter_config,
    refuse_pickle,
)

from loraledger.errors import InputError
from tests.conftest import ENGINEER, small_adapter


@pytest.fixture
def adapter(tmp_path: Path) -> Path:
    return small_adapter(tmp_path / "adapter")


def test_a_peft_directory_scans(adapter: Path) -> None:
    scanned = AdapterDirectory.scan(adapter)
    assert [f.relpath for f in scanned.files] == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert scanned.total_bytes == sum(p.stat().st_size for p in adapter.iterdir())


def test_nested_files_are_kept_with_posix_paths(adapter: Path) -> None:
    (adapter / "tokenizer").mkdir()
    (adapter / "tokenizer" / "tokenizer.json").write_text("{}")
    assert "tokenizer/tokenizer.json" in {f.relpath for f in AdapterDirectory.scan(adapter).files}


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="adapter directory does not exist"):
        AdapterDirectory.scan(tmp_path / "nope")


def test_a_file_is_not_a_directory(adapter: Path) -> None:
    with pytest.raises(InputError, match="is not a directory"):
        AdapterDirectory.scan(adapter / "adapter_config.json")


@pytest.mark.parametrize("missing", ["adapter_config.json", "adapter_model.safetensors"])
def test_required_files(adapter: Path, missing: str) -> None:
    (adapter / missing).unlink()
    with pytest.raises(InputError, match=f"{missing} is missing"):
        AdapterDirectory.scan(adapter)


@pytest.mark.parametrize(
    "name",
    [
        "adapter_model.bin",
        "training_args.bin",
        "model.pt",
        "weights.pth",
        "state.pkl",
        "x.ckpt",
        "sub/opt.PICKLE",
    ],
)
def test_pickles_are_refused_and_never_unpickled(adapter: Path, tmp_path: Path, name: str) -> None:
    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.mkdir, (str(marker),))

    target = adapter / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(InputError, match=r"pickle-based file .* is refused and was not opened"):
        AdapterDirectory.scan(adapter)
    assert not marker.exists()


def test_symlinked_file_is_refused(adapter: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (adapter / "notes.txt").symlink_to(secret)
    with pytest.raises(InputError, match="symlink 'notes.txt' is refused"):
        AdapterDirectory.scan(adapter)


def test_symlink_escaping_through_a_directory_is_refused(adapter: Path, tmp_path: Path) -> None:
    (adapter / "up").symlink_to(tmp_path)
    with pytest.raises(InputError, match="symlink 'up' is refused"):
        AdapterDirectory.scan(adapter)


def test_symlinked_adapter_directory_is_refused(adapter: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(adapter)
    with pytest.raises(InputError, match="is not a directory"):
        AdapterDirectory.scan(link)


def test_special_files_are_refused(adapter: Path) -> None:
    os.mkfifo(adapter / "pipe")
    with pytest.raises(InputError, match="not a regular file"):
        AdapterDirectory.scan(adapter)


@pytest.mark.parametrize("name", [".gitattributes", ".git"])
def test_git_metadata_is_refused(adapter: Path, name: str) -> None:
    (adapter / name).write_text("*.safetensors filter=lfs")
    with pytest.raises(InputError, match="git metadata"):
        AdapterDirectory.scan(adapter)


@pytest.mark.parametrize("name", ["bad\x01name.json", "back\\slash.txt"])
def test_control_characters_in_file_names(adapter: Path, name: str) -> None:
    (adapter / name).write_text("{}")
    with pytest.raises(InputError, match="control characters, backslashes"):
        AdapterDirectory.scan(adapter)


def test_file_name_that_is_not_utf8(adapter: Path) -> None:
    os.close(os.open(os.fsencode(adapter) + b"/caf\xe9.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    with pytest.raises(InputError, match="not UTF-8"):
        AdapterDirectory.scan(adapter)


# --- adapter_config.json -------------------------------------------------------------


def _config(adapter: Path, text: str) -> Path:
    path = adapter / "adapter_config.json"
    path.write_text(text)
    return path


def test_invalid_json_names_the_line(adapter: Path) -> None:
    path = _config(adapter, '{\n  "peft_type": "LORA",\n  "r": 8,,\n}')
    with pytest.raises(InputError) as caught:
        read_adapter_config(path)
    assert str(caught.value).startswith(f"{path}:3: invalid JSON")


def test_config_must_be_an_object(adapter: Path) -> None:
    with pytest.raises(InputError, match="must hold a JSON object"):
        read_adapter_config(_config(adapter, "[1, 2]"))


def test_config_needs_peft_type(adapter: Path) -> None:
    path = _config(adapter, json.dumps({"r": 8}))
    with pytest.raises(InputError, match="field 'peft_type'"):
        read_adapter_config(path)


def test_config_field_types(adapter: Path) -> None:
    path = _config(adapter, json.dumps({"peft_type": "LORA", "r": "eight"}))
    with pytest.raises(InputError, match="field 'r'"):
        read_adapter_config(path)


def test_lora_needs_a_positive_rank(adapter: Path) -> None:
    with pytest.raises(InputError, match="field 'r'"):
        read_adapter_config(_config(adapter, json.dumps({"peft_type": "LORA", "r": 0})))
    with pytest.raises(InputError, match="needs 'r'"):
        read_adapter_config(_config(adapter, json.dumps({"peft_type": "LORA"})))


def test_config_not_utf8(adapter: Path) -> None:
    path = adapter / "adapter_config.json"
    path.write_bytes(b'{"peft_type": "\xff"}')
    with pytest.raises(InputError, match="is not UTF-8"):
        read_adapter_config(path)


def test_unknown_config_keys_are_kept(adapter: Path) -> None:
    config, raw = read_adapter_config(
        _config(adapter, json.dumps({"peft_type": "LORA", "r": 4, "future_key": 1}))
    )
    assert config.r == 4 and raw["future_key"] == 1


# --- safetensors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: b[:-3], "not fully covered"),
        (lambda b: b[:8] + b"{bad" + b[12:], "invalid JSON"),
        (lambda b: b"\xff" * 8 + b[8:], "header too large"),
        (lambda b: b"", "header too small"),
    ],
)
def test_corrupt_safetensors_header(adapter: Path, damage: object, reason: str) -> None:
    path = adapter / "adapter_model.safetensors"
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    with pytest.raises(InputError, match=f"not a valid safetensors file.*{reason}"):
        check_safetensors(path)


@pytest.mark.parametrize("name", ["training_args.dat", "notes.txt", "sub/weights.safetensors2"])
@pytest.mark.parametrize("kind", ["raw pickle", "zip of pickles"])
def test_pickles_under_any_name_are_refused_by_their_bytes(
    registry: Registry, adapter: Path, tmp_path: Path, name: str, kind: str
) -> None:
    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.mkdir, (str(marker),))

    target = adapter / name
    target.parent.mkdir(exist_ok=True)
    if kind == "raw pickle":
        target.write_bytes(pickle.dumps(Boom(), protocol=4))
        message = "is a pickle \\(protocol 4\\) whatever its name"
    else:  # what torch.save writes: a zip holding data.pkl
        with zipfile.ZipFile(target, "w") as archive:
            archive.writestr("archive/data.pkl", pickle.dumps(Boom()))
            archive.writestr("archive/version", "3\n")
        message = "is a zip of pickles \\(archive/data.pkl"
    with pytest.raises(InputError, match=f"^{adapter / name}: {message}"):
        registry.adapters.register(adapter, "bot", actor=ENGINEER)
    assert not marker.exists() and registry.adapters.list() == []
    assert not any((registry.root / "tmp").iterdir())  # nothing half-written stays


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("adapter_model\u200b.safetensors", "U+200B"),  # zero-width space
        ("README\u202emd.txt", "U+202E"),  # right-to-left override
        ("\ufeffnotes.md", "U+FEFF"),  # byte order mark
    ],
)
def test_invisible_characters_in_file_names_are_refused(
    adapter: Path, name: str, code: str
) -> None:
    (adapter / name).write_text("looks like another file")
    message = f"'{name.encode('unicode_escape').decode()}' has invisible or direction-changing"
    with pytest.raises(InputError, match=re.escape(f"{message} characters ({code})")):
        AdapterDirectory.scan(adapter)


def test_file_count_and_sizes_are_bounded(adapter: Path) -> None:
    sparse = adapter / "huge.bin.safetensors"
    with sparse.open("wb") as f:
        f.truncate(2 * 10**9)  # 2 GB, but no disk: refused before a byte is copied
    with pytest.raises(InputError, match="'huge.bin.safetensors' is 2,000,000,000 bytes, over"):
        AdapterDirectory.scan(adapter)
    assert AdapterDirectory.scan(adapter, Limits(max_file_bytes=3 * 10**9)).total_bytes > 10**9
    with pytest.raises(InputError, match="over the limit of 1,000 \\(raise it with --max-total"):
        AdapterDirectory.scan(adapter, Limits(max_file_bytes=3 * 10**9, max_total_bytes=1000))
    sparse.unlink()
    for i in range(5):
        (adapter / f"extra{i}.md").write_text("x")
    with pytest.raises(InputError, match="holds more than 4 files"):
        AdapterDirectory.scan(adapter, Limits(max_files=4))


def safetensors_with_header_of(length: int, path: Path) -> Path:
    """A valid safetensors file whose JSON header is exactly ``length`` bytes (padded with
    spaces, as the format allows): one float32 tensor of two values."""
    import struct

    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})
    assert len(header) <= length
    path.write_bytes(
        struct.pack("<Q", length) + header.encode().ljust(length) + struct.pack("<2f", 1.5, -2)
    )
    return path


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    length=st.integers(min_value=64, max_value=4096) | st.sampled_from([0x280, 0x380, 0x480, 0x580])
)
def test_a_file_that_parses_as_safetensors_is_never_taken_for_a_pickle(
    tmp_path: Path, length: int
) -> None:
    """A header of 0x380 bytes begins `80 03 00 00`, the bytes of a protocol-3 pickle: the
    sniffer refused such valid adapters at random by their header size (issue #35)."""
    from safetensors.numpy import load_file

    path = safetensors_with_header_of(length, tmp_path / f"w{length}.safetensors")
    assert list(load_file(path)["w"]) == [1.5, -2.0]  # what the library reads, valid
    refuse_pickle(path)
    check_safetensors(path)


def test_a_pickle_is_refused_even_where_its_bytes_could_start_a_header(tmp_path: Path) -> None:
    """What is not valid safetensors is still judged by its first bytes: a protocol-3
    pickle, and one padded so its "header length" points inside the file."""
    target = tmp_path / "weights.dat"
    target.write_bytes(pickle.dumps({"w": [1.5] * 600}, protocol=3))
    with pytest.raises(InputError, match=r"is a pickle \(protocol 3\)"):
        refuse_pickle(target)
    target.write_bytes(b"\x80\x03" + b"\x00" * 6 + b"{not json}" + b"\x00" * 0x400)
    with pytest.raises(InputError, match=r"is a pickle \(protocol 3\)"):
        refuse_pickle(target)
