"""Bad input and faults as a careless or hostile user meets them (issue #18): one
`error:` line naming the file, line or field and what to do, exit 2, no traceback, and
nothing written."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.conftest import small_adapter

SOURCE = "--source", "tests", "--license", "CC-BY-4.0"
PC = '{"prompt": "What is the fee?", "completion": "Twelve dollars."}'


def one_line(result: object, *parts: str) -> str:
    """The single error line (asserting it is one, with no traceback, holding ``parts``)."""
    err = result.stderr  # type: ignore[attr-defined]
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err + result.stdout  # type: ignore[attr-defined]
    for part in parts:
        assert part in lines[0], lines[0]
    return str(lines[0])


def events(cli: Cli) -> int:
    return len(json.loads(cli("audit", "log", "--json").stdout))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"prompt": "a", "completion": "b", "n": ' + "7" * 5000 + "}", "5,000 digits"),
        ('{"prompt": "a", "prompt": "b", "completion": "c"}', "has the key 'prompt' twice"),
        ('{"prompt": "a", "completion": "b", "w": NaN}', "has NaN"),
        ('{"prompt": "a", "completion": "b", "w": 1e999}', "too large for a float"),
    ],
)
def test_a_bad_dataset_record_is_one_line_and_nothing_is_registered(
    ready: Cli, tmp_path: Path, line: str, message: str
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(PC + "\n" + line + "\n")
    before = events(ready)
    result = ready("data", "add", str(data), "--name", "faq", *SOURCE, actor="eve", code=2)
    one_line(result, f"{data}:2: ", message)
    assert json.loads(ready("data", "list", "--json").stdout) == [] and events(ready) == before


def test_files_that_are_not_files_are_refused_before_reading(ready: Cli, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)  # reading it would hang
    for path, kind in ((fifo, "a named pipe"), (Path("/dev/zero"), "a character device")):
        result = ready("data", "add", str(path), "--name", "faq", *SOURCE, actor="eve", code=2)
        one_line(result, f"{path}: is {kind}")
    endless = tmp_path / "endless.jsonl"
    with endless.open("wb") as f:
        f.truncate(64 * 2**20)  # one 64 MiB "line": refused at the limit, never read whole
    result = ready("data", "add", str(endless), "--name", "faq", *SOURCE, actor="eve", code=2)
    one_line(result, f"{endless}:1: is longer than 1,048,576 bytes", "--max-line-bytes")


def test_a_policy_naming_an_environment_twice_is_refused(ready: Cli, tmp_path: Path) -> None:
    ready("adapters", "register", str(small_adapter(tmp_path / "a")), "--name", "bot", actor="eve")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nenvironments:\n  staging:\n    approvals: {count: 2, role: reviewer}\n"
        "  staging:\n    provenance: {signed: true}\n"
    )  # PyYAML alone keeps the second: the approvals rule would vanish and the gate pass
    before = events(ready)
    result = ready("gate", "check", "bot@v1", "--env", "staging", "--policy", str(policy),
                   actor="eve", code=2)  # fmt: skip
    one_line(result, f"{policy}:5: has the key 'staging' twice (lines 3 and 5)")
    assert events(ready) == before


def test_an_unknown_training_key_holding_an_alias_bomb_is_refused_at_once(
    ready: Cli, tmp_path: Path
) -> None:
    config = tmp_path / "train.yaml"
    bomb = "future: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"f{i}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(6)
    )
    config.write_text(
        "base: smollm2-135m-instruct\ndatasets: [faq]\nadapter_name: bot\nmax_steps: 1\n" + bomb
    )
    result = ready("train", str(config), actor="eve", code=2)
    one_line(result, f"{config}:", "expands to more than 100,000 values")
    config.write_text(
        "base: smollm2-135m-instruct\ndatasets: [faq]\nadapter_name: bot\nmax_steps: 1\n"
        "learning_rat: 0.1\n"
    )
    result = ready("train", str(config), actor="eve", code=2)
    one_line(result, f"{config}:5: field 'learning_rat': is not a known setting; the known ones")


def test_a_pickle_under_another_name_is_refused_and_never_opened(
    ready: Cli, tmp_path: Path
) -> None:
    adapter = small_adapter(tmp_path / "a")
    (adapter / "training_args.dat").write_bytes(pickle.dumps({"lr": 1}, protocol=4))
    result = ready("adapters", "register", str(adapter), "--name", "bot", actor="eve", code=2)
    one_line(result, "training_args.dat: is a pickle (protocol 4) whatever its name")
    assert json.loads(ready("adapters", "list", "--json").stdout) == []


@pytest.mark.parametrize(
    "name", ["x" * 100_000, "mallory\n2026-12-04 admin approved", "eve\x1b[2J\x1b[31mroot"]
)
def test_an_impossible_actor_name_is_refused_and_never_written(ready: Cli, name: str) -> None:
    before = events(ready)
    result = ready("keys", "create", "zed", "--role", "auditor", actor=name, code=2)
    line = one_line(result, "acting identity (--as)", "is invalid")
    assert len(line) < 300 and "\x1b" not in line and "\n" not in line.strip()
    assert events(ready) == before  # no access.refused with the raw name
    ready("keys", "create", "zed", "--role", "auditor", actor="nobody", code=2)  # recorded
    assert events(ready) == before + 1


def test_text_a_user_typed_is_printed_escaped(ready: Cli, tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(PC + "\n")
    ready("data", "add", str(data), "--name", "faq", "--source", "web\x1b[2J\u202eevil",
          "--license", "CC-BY-4.0", actor="eve")  # fmt: skip
    shown = ready("data", "show", "faq").stdout
    assert "web\\x1b[2J\\u202eevil" in shown and "\x1b" not in shown and "\u202e" not in shown


def test_destinations_of_the_wrong_kind_or_through_links_are_refused(
    ready: Cli, tmp_path: Path
) -> None:
    ready("adapters", "register", str(small_adapter(tmp_path / "a")), "--name", "bot", actor="eve")
    serve = tmp_path / "serve"
    (serve / "current").mkdir(parents=True)  # a real directory where sync keeps its link
    result = ready("sync", str(serve), "--env", "staging", "--name", "bot", code=2)
    one_line(result, "'current' in it is a real directory or file, not the link sync maintains")
    assert sorted(p.name for p in serve.iterdir()) == ["current"]  # nothing stray left
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    one_line(ready("sync", str(a_file), "--env", "staging", code=2), "is a file, not a directory")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    for dest in (link, link / "sub"):
        result = ready("adapters", "fetch", "bot@v1", str(dest), code=2)
        one_line(result, "is a symlink", "pass the real path")
        result = ready("sync", str(dest), "--env", "staging", code=2)
        one_line(result, "is a symlink")
    assert list(elsewhere.iterdir()) == []
    out = tmp_path / "docs"
    out.mkdir()
    result = ready("export", "model-card", "bot@v1", "--output", str(out), code=2)
    one_line(result, f"{out}: is a directory, not a regular file; pass the name of a file to write")
    result = ready("evidence", "export", "--env", "staging", "--output", str(link / "p.tgz"),
                   actor="alice", code=2)  # fmt: skip
    one_line(result, "its parent folder is a symlink")
    assert list(tmp_path.glob("**/.*partial*")) == [] and list(tmp_path.glob("**/.current-*")) == []


def special_files(directory: Path) -> list[tuple[Path, str]]:
    """A character device (as root: a node like /dev/null's, 1:3, made here rather than
    risking the real one) and a FIFO, with the words a refusal names them by."""
    directory.mkdir()
    made = [(directory / "fifo", "a named pipe (FIFO)")]
    os.mkfifo(made[0][0])
    if os.geteuid() == 0:
        os.mknod(directory / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        made.append((directory / "null", "a character device"))
    return made


def test_no_output_path_replaces_a_device_or_a_fifo(ready: Cli, tmp_path: Path) -> None:
    """`keys generate NAME -o /dev/null` as root once renamed a file over the device, and
    every other program writing to /dev/null then failed (issue #34, #35). Every output
    path refuses such a node in one line, before any work, and leaves it as it was."""
    ready("adapters", "register", str(small_adapter(tmp_path / "a")), "--name", "bot", actor="eve")
    nodes = special_files(tmp_path / "nodes")
    for node, kind in nodes:
        before = node.lstat()
        result = ready("keys", "generate", "sam", "--output", str(node), code=2)
        one_line(result, f"{node}: is {kind}, not a regular file")
        assert not (tmp_path / "keys" / "sam.pem").exists()  # no key pair half-made
        result = ready("export", "model-card", "bot@v1", "-o", str(node), code=2)
        one_line(result, f"{node}: is {kind}")
        result = ready("evidence", "export", "--env", "staging", "-o", str(node),
                       actor="alice", code=2)  # fmt: skip
        one_line(result, f"{node}: is {kind}")
        result = ready("suites", "judge-train", "--model", "nothing", "--out", str(node), code=2)
        one_line(result, f"{node}: is {kind}")
        after = node.lstat()
        assert (after.st_mode, after.st_ino, after.st_rdev) == (
            before.st_mode, before.st_ino, before.st_rdev
        )  # fmt: skip
    assert list(tmp_path.glob("**/.*partial*")) == []


def test_an_adapter_config_nested_100000_deep_is_one_line(ready: Cli, tmp_path: Path) -> None:
    adapter = small_adapter(tmp_path / "a")
    config = adapter / "adapter_config.json"
    text = config.read_text()
    config.write_text(text.rstrip().rstrip("}") + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    result = ready("adapters", "register", str(adapter), "--name", "bot", actor="eve", code=2)
    one_line(result, "adapter_config.json: is nested too deeply")
    config.write_text(text.replace('"r":', '"r": 4, "r":', 1))
    result = ready("adapters", "register", str(adapter), "--name", "bot", actor="eve", code=2)
    one_line(result, "adapter_config.json: has the key 'r' twice")
    assert json.loads(ready("adapters", "list", "--json").stdout) == []


def test_keys_others_can_read_or_replace_are_refused_with_the_chmod(
    ready: Cli, tmp_path: Path
) -> None:
    key = tmp_path / "keys" / "eve.pem"
    before = events(ready)
    key.chmod(0o666)
    result = ready("adapters", "register", str(small_adapter(tmp_path / "a")), "--name", "bot",
                   actor="eve", code=1)  # fmt: skip
    one_line(result, f"the private key {key} is readable or writable by others (mode 0666)",
             f"run `chmod 600 {key}`")  # fmt: skip
    key.chmod(0o600)
    key.parent.chmod(0o777)
    result = ready("adapters", "register", str(small_adapter(tmp_path / "b")), "--name", "bot",
                   actor="eve", code=1)  # fmt: skip
    one_line(result, "is writable by others (mode 0777)", f"chmod 700 {key.parent}")
    key.parent.chmod(0o700)
    assert json.loads(ready("adapters", "list", "--json").stdout) == []
    assert events(ready) == before + 2  # each refusal recorded, nothing else written


@pytest.mark.parametrize("name", ["adapter_model\u200b.safetensors", "notes\u202etxt.md"])
def test_a_file_name_that_looks_like_another_is_refused(
    ready: Cli, tmp_path: Path, name: str
) -> None:
    adapter = small_adapter(tmp_path / "a")
    (adapter / name).write_bytes((adapter / "adapter_model.safetensors").read_bytes())
    result = ready("adapters", "register", str(adapter), "--name", "bot", actor="eve", code=2)
    one_line(result, "has invisible or direction-changing characters", "rename it")
    assert "\u200b" not in result.stderr and "\u202e" not in result.stderr
    assert json.loads(ready("adapters", "list", "--json").stdout) == []


def test_the_inputs_of_a_break_test_are_each_one_line(ready: Cli, tmp_path: Path) -> None:
    """Issue #35, item 9: each of these once read until the kernel killed the process, printed
    a traceback or a usage box, or was silently taken for something else."""
    ready("adapters", "register", str(small_adapter(tmp_path / "a")), "--name", "bank", actor="eve")
    before = events(ready)
    # endless files: refused before a byte is read (they read ~20 GB before)
    result = ready("keys", "create", "bob", "--role", "engineer", "--public-key", "/dev/zero",
                   actor="alice", code=2)  # fmt: skip
    one_line(result, "/dev/zero: is a character device, not a regular file; pass the public key")
    result = ready("--trust-root", "/dev/zero", "audit", "verify", code=2)
    one_line(result, "/dev/zero: is a character device, not a regular file; pass the trust root")
    # numbers out of range: one line naming the option and its help, not a traceback or a box
    for limit, bound in (("999999999999999999999", "less than or equal to"), ("-5", "greater")):
        result = ready("audit", "log", "--limit", limit, code=2)
        one_line(result, "Invalid value for '--limit'", bound, "see `loraledger audit log --help`")
    result = ready("keys", "create", code=2)
    one_line(result, "Missing argument 'name'; see `loraledger keys create --help`")
    # a version is written one way: bank@v01 is not bank@v1
    for ref in ("bank@v01", "bank@v0", "bank@v" + "9" * 19):
        one_line(ready("adapters", "show", ref, code=2), f"reference {ref!r} is invalid")
    assert ready("adapters", "show", "bank@v1").exit_code == 0
    # a threshold that is not a finite number
    for value in (".nan", "-1e999", ".inf"):
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            "version: 1\nenvironments:\n  staging:\n    thresholds:\n"
            f"      - {{suite: sanity, task: sanity_mc, metric: acc, min: {value}}}\n"
        )
        result = ready("gate", "check", "bank@v1", "--env", "staging", "--policy", str(policy),
                       actor="alice", code=2)  # fmt: skip
        one_line(result, f"{policy}:5: field 'environments.staging.thresholds.0.min'", "finite")
    # an environment nothing was deployed to is not an empty history
    result = ready("deployments", "--env", "nowhere", code=1)
    one_line(result, "nothing was ever deployed to 'nowhere'; environments with deployments: none")
    assert events(ready) == before
