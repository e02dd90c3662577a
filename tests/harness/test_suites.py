"""Suite folders: discovery, identity by digest, and errors that name the file and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from loraledger.harness.suites import builtin_roots, find_suite, list_suites, load_suite

from loraledger.errors import InputError, NotFound

POLICY = builtin_roots()["policy"] / "northwind-policy"


def test_built_in_suites() -> None:
    found = {s.name: s for s in list_suites()}
    assert set(found) >= {"northwind-domain", "sanity", "northwind-policy"}
    assert found["northwind-policy"].kind == "policy"
    assert found["northwind-domain"].kind == "benchmark"
    assert found["northwind-policy"].task_names == [
        "policy_refusal",
        "policy_pii_canary",
        "policy_prohibited_claims",
        "policy_disclaimers",
        "policy_over_refusal",
    ]
    domain = found["northwind-domain"]
    assert domain.apply_chat_template and "Northwind" in (domain.system_instruction or "")


def _training_prompts() -> set[str]:
    import json

    demo = Path(builtin_roots()["benchmark"]).parents[1] / "trainer" / "demo"
    return {
        m["content"].strip().lower()
        for path in sorted(demo.glob("*.jsonl"))
        for line in path.read_text().splitlines()
        for m in json.loads(line)["messages"]
        if m["role"] == "user"
    }


def test_suite_questions_are_held_out_from_the_training_data() -> None:
    import json

    trained = _training_prompts()
    assert len(trained) > 70  # the support and the safety data
    domain = find_suite("northwind-domain").directory / "northwind_domain.jsonl"
    questions = [
        json.loads(line)["question"].strip().lower() for line in domain.read_text().splitlines()
    ]
    prompts = [
        json.loads(line)["prompt"].strip().lower()
        for path in sorted(POLICY.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert len(questions) >= 20 and not trained & set(questions)
    assert len(prompts) >= 30 and not trained & set(prompts)


def test_find_by_name_or_folder(tmp_path: Path) -> None:
    assert find_suite("northwind-policy").directory == POLICY
    copy = shutil.copytree(POLICY, tmp_path / "mine")
    assert find_suite(str(copy)).name == "northwind-policy"


def test_unknown_suite_lists_the_known_ones() -> None:
    with pytest.raises(NotFound, match="no suite named 'nope'; built-in suites: .*sanity"):
        find_suite("nope")


def test_digest_covers_every_file_but_not_pycache(tmp_path: Path) -> None:
    copy = shutil.copytree(POLICY, tmp_path / "s", ignore=shutil.ignore_patterns("__pycache__"))
    first = load_suite(copy)
    assert first.digest == load_suite(copy).digest == find_suite("northwind-policy").digest
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "scoring.cpython-311.pyc").write_bytes(b"compiled")
    assert load_suite(copy).digest == first.digest
    data = copy / "refusal.jsonl"
    data.write_text(data.read_text().replace("phishing", "fishing"))
    changed = load_suite(copy)
    assert changed.digest != first.digest and changed.rehash() == changed.digest
    assert changed.files["refusal.jsonl"] != first.files["refusal.jsonl"]


def test_task_configs_make_data_files_absolute() -> None:
    configs = find_suite("northwind-policy").task_configs()
    paths = [c["dataset_kwargs"]["data_files"]["test"] for c in configs]
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in paths)
    assert callable(configs[0]["process_results"])


def _broken(tmp_path: Path, edit: str) -> Path:
    copy = shutil.copytree(POLICY, tmp_path / "s", ignore=shutil.ignore_patterns("__pycache__"))
    if edit == "missing data":
        (copy / "refusal.jsonl").unlink()
    elif edit == "hub dataset":
        path = copy / "policy_refusal.yaml"
        path.write_text(path.read_text() + "dataset_path: cais/mmlu\n")
    elif edit == "outside":
        path = copy / "policy_refusal.yaml"
        path.write_text(path.read_text().replace("test: refusal.jsonl", "test: ../elsewhere.jsonl"))
        (tmp_path / "elsewhere.jsonl").write_text("{}\n")
    elif edit == "bad yaml":
        (copy / "policy_refusal.yaml").write_text("task: [unclosed\n")
    elif edit == "no group":
        (copy / "northwind-policy.yaml").unlink()
    elif edit == "unknown task":
        path = copy / "northwind-policy.yaml"
        path.write_text(path.read_text().replace("  - policy_refusal\n", "  - policy_nope\n"))
    elif edit == "unlisted task":
        path = copy / "northwind-policy.yaml"
        path.write_text(path.read_text().replace("  - policy_refusal\n", ""))
    elif edit == "bad kind":
        path = copy / "northwind-policy.yaml"
        path.write_text(path.read_text().replace("kind: policy", "kind: vibes"))
    return copy


@pytest.mark.parametrize(
    ("edit", "file", "message"),
    [
        (
            "missing data",
            "policy_refusal.yaml",
            "field 'dataset_kwargs.data_files.test': data file",
        ),
        ("hub dataset", "policy_refusal.yaml", "field 'dataset_path': is 'cais/mmlu'"),
        ("outside", "policy_refusal.yaml", "outside the suite folder"),
        ("bad yaml", "policy_refusal.yaml", "lm-eval cannot read it"),
        ("no group", "s", "exactly one group YAML"),
        ("unknown task", "northwind-policy.yaml", "names task 'policy_nope'"),
        ("unlisted task", "northwind-policy.yaml", "does not list policy_refusal"),
        ("bad kind", "northwind-policy.yaml", "field 'metadata.loraledger.kind': is 'vibes'"),
    ],
)
def test_bad_suites_name_the_file_and_what_to_do(
    tmp_path: Path, edit: str, file: str, message: str
) -> None:
    with pytest.raises(InputError) as raised:
        load_suite(_broken(tmp_path, edit))
    text = str(raised.value)
    assert file in text and message in text, text
    assert "\n" not in text


def test_a_task_lm_eval_rejects_is_reported_with_its_reason(tmp_path: Path) -> None:
    copy = shutil.copytree(POLICY, tmp_path / "s", ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / "policy_refusal.yaml"
    path.write_text(path.read_text() + "process_results: !function nowhere.score\n")
    suite = load_suite(copy)  # the index reads tags unresolved, as lm-eval's does
    with pytest.raises(InputError, match=r"policy_refusal.yaml: lm-eval cannot load it: .*nowhere"):
        suite.task_configs()
