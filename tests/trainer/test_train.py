"""Training on a tiny random Llama: provenance, reproducibility, resume, refusals."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from loraledger.registry import BaseModelVersion, DatasetVersion, Registry
from loraledger.trainer.base_models import add_base
from loraledger.trainer.examples import IGNORE_INDEX, tokenize
from loraledger.trainer.train import TrainingInterrupted, train

from loraledger.errors import Conflict, InputError, UsageError, VerificationError
from tests.conftest import ENGINEER, REVIEWER
from tests.registry.helpers import sql
from tests.trainer.conftest import write_config

pytestmark = pytest.mark.usefixtures("tiny_base", "faq")


def run(registry: Registry, config: Path, code: Path, work: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    return train(registry, config, actor=ENGINEER, code_dir=code, work_dir=work, **kwargs)  # type: ignore[arg-type]


def test_provenance_record_is_complete(
    registry: Registry,
    tmp_path: Path,
    clean_code: Path,
    tiny_base: BaseModelVersion,
    faq: DatasetVersion,
) -> None:
    config = write_config(tmp_path / "c.yaml")
    result = run(registry, config, clean_code, tmp_path / "work")
    version, record = result.version, result.run
    assert version.ref == "faq-bot@v1" and version.signer == ENGINEER
    assert record.config_sha256 == hashlib.sha256(config.read_bytes()).hexdigest()
    assert record.config["lora"]["r"] == 4 and record.seed == 11
    assert (record.base_ref, record.base_digest) == (tiny_base.ref, tiny_base.digest)
    assert [(d.ref, d.merkle_root, d.records) for d in record.datasets] == [
        (faq.ref, faq.merkle_root, 12)
    ]
    assert record.quantization == {
        "method": "nf4",
        "double_quant": True,
        "library": "bitsandbytes",
        "load_in_4bit": True,
    }
    assert record.compute_dtype in {"float32", "bfloat16"} and record.compute_dtype_reason
    assert record.code["commit"] and record.code["dirty"] is False
    assert record.code["allow_dirty"] is False
    assert {"torch", "transformers", "peft", "bitsandbytes", "python"} <= set(record.libraries)
    assert record.hardware["cpu_count"] and record.device == "cpu"
    assert [p.step for p in record.loss_curve] == [1, 2, 3, 4] and record.steps == 4
    assert record.tokens_seen == record.loss_curve[-1].tokens > 0
    assert record.wall_seconds > 0 and record.actor == ENGINEER
    assert record.records_without_assistant_tokens == 0
    assert registry.adapters.training_run(version.ref) == record
    event = registry.audit_events(action="adapter.register")[-1]
    assert event.payload["training_run"] == record.model_dump(mode="json")
    with registry.db.read() as conn:
        lineage = conn.execute(
            "SELECT adapter, base, dataset, code_commit FROM v_adapter_lineage"
        ).fetchall()
    assert lineage == [("faq-bot@v1", "tiny@v1", "faq@v1", record.code["commit"])]
    registry.adapters.verify(version.ref)
    registry.verify_audit()


# The dtype is set: `auto` may decide differently on a loaded machine (it times both and
# caches nothing when the CPU is busy; docs/training.md), and bytes are the same only for
# the same decision -- which each dtype here pins, whatever the load.
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_same_config_same_bytes(
    registry: Registry, tmp_path: Path, clean_code: Path, dtype: str
) -> None:
    config = write_config(tmp_path / "c.yaml", compute_dtype=dtype)
    first = run(registry, config, clean_code, tmp_path / "w1").version
    second = run(registry, config, clean_code, tmp_path / "w2").version
    assert first.digest == second.digest
    assert (first.version, second.version) == (1, 2)
    other_seed = write_config(tmp_path / "c2.yaml", seed=12, compute_dtype=dtype)
    assert run(registry, other_seed, clean_code, tmp_path / "w3").version.digest != first.digest


def test_plain_lora_without_quantization(
    registry: Registry, tmp_path: Path, clean_code: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", quantization="none", max_steps=2)
    result = run(registry, config, clean_code, tmp_path / "w")
    assert result.run.quantization == {"method": "none"}


def test_resume_after_an_interruption_gives_the_same_adapter(
    registry: Registry, tmp_path: Path, clean_code: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", max_steps=6, checkpoint_every=0)
    straight = run(registry, config, clean_code, tmp_path / "straight")
    uninterrupted = straight.version

    def interrupt_at_step_3(report: object) -> None:
        if report.step == 3:
            raise KeyboardInterrupt

    # the same dtype as the straight run: "auto" decides by timing, which a loaded machine
    # may tip the other way between two runs (a resume keeps the interrupted run's)
    with pytest.raises(TrainingInterrupted, match="interrupted at step 3 of 6.*--resume"):
        run(registry, config, clean_code, tmp_path / "w", on_step=interrupt_at_step_3,
            dtype=straight.run.compute_dtype)  # fmt: skip
    with pytest.raises(UsageError, match="pass --resume to continue it"):
        run(registry, config, clean_code, tmp_path / "w")
    resumed = run(registry, config, clean_code, tmp_path / "w", resume=True)
    assert resumed.run.resumed_from_step == 3
    assert [p.step for p in resumed.run.loss_curve] == [1, 2, 3, 4, 5, 6]
    assert resumed.version.digest == uninterrupted.digest
    with pytest.raises(UsageError, match="nothing to resume"):
        run(registry, config, clean_code, tmp_path / "w", resume=True)


def test_a_checkpoint_of_another_config_is_refused(
    registry: Registry, tmp_path: Path, clean_code: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", max_steps=4)

    def stop(report: object) -> None:
        if report.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        run(registry, config, clean_code, tmp_path / "w", on_step=stop)
    # the same config file name, other data: the dataset changed under the run
    from loraledger.trainer.datasets import add_dataset

    from tests.trainer.conftest import write_faq

    add_dataset(
        registry,
        write_faq(tmp_path / "faq2.jsonl", copies=3),
        name="faq",
        source="tests",
        license="CC-BY-4.0",
        actor=ENGINEER,
    )
    with pytest.raises(Conflict, match="was made with another config, base or data"):
        run(registry, config, clean_code, tmp_path / "w", resume=True)


def test_a_dirty_tree_is_refused_unless_allowed(
    registry: Registry, tmp_path: Path, clean_code: Path
) -> None:
    (clean_code / "train.py").write_text("print('changed')\n")
    config = write_config(tmp_path / "c.yaml", max_steps=1)
    with pytest.raises(Conflict, match=r"uncommitted changes \(train.py\).*--allow-dirty"):
        run(registry, config, clean_code, tmp_path / "w")
    record = run(registry, config, clean_code, tmp_path / "w", allow_dirty=True).run
    assert record.code["dirty"] is True and record.code["allow_dirty"] is True
    assert record.code["changes"] == ["train.py"]


def test_only_engineers_and_admins_train(
    registry: Registry, tmp_path: Path, clean_code: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", max_steps=1)
    from loraledger.errors import PermissionDenied

    with pytest.raises(PermissionDenied, match="this needs admin or engineer"):
        train(registry, config, actor=REVIEWER, code_dir=clean_code, work_dir=tmp_path / "w")


def test_a_changed_base_is_refused(
    registry: Registry, tmp_path: Path, clean_code: Path, tiny_base: BaseModelVersion
) -> None:
    (Path(tiny_base.location) / "config.json").write_text("{}")
    config = write_config(tmp_path / "c.yaml", max_steps=1)
    with pytest.raises(VerificationError, match=r"not the registered base \(changed: config"):
        run(registry, config, clean_code, tmp_path / "w")


def test_a_tampered_dataset_is_refused(
    registry: Registry, tmp_path: Path, clean_code: Path, faq: DatasetVersion
) -> None:
    sql(registry, "UPDATE dataset_records SET sha256 = ? WHERE position = 1", ["00" * 32])
    config = write_config(tmp_path / "c.yaml", max_steps=1)
    with pytest.raises(VerificationError, match="Merkle root"):
        run(registry, config, clean_code, tmp_path / "w")


def test_an_adapter_is_refused_on_another_base(
    registry: Registry,
    tmp_path: Path,
    clean_code: Path,
    tiny_base_dir: Path,
    tiny_base: BaseModelVersion,
) -> None:
    version = run(
        registry, write_config(tmp_path / "c.yaml", max_steps=1), clean_code, tmp_path / "w"
    ).version
    registry.adapters.require_base(version.ref, tiny_base)
    other_dir = tmp_path / "other-base"
    shutil.copytree(tiny_base_dir, other_dir)
    (other_dir / "generation_config.json").write_text('{"note": "another base"}')
    other = add_base(registry, name="other", directory=other_dir, actor=ENGINEER)
    with pytest.raises(Conflict, match=r"faq-bot@v1 was trained on tiny@v1 .*not on other@v1"):
        registry.adapters.require_base(version.ref, other)


def test_loss_only_on_assistant_tokens(tiny_base_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base_dir)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Fee?"},
        {"role": "assistant", "content": "None."},
        {"role": "user", "content": "Sure?"},
        {"role": "assistant", "content": "Yes, none."},
    ]
    example = tokenize(tokenizer, messages, 512)
    learned = [
        t
        for t, label in zip(example.input_ids, example.labels, strict=True)
        if label != IGNORE_INDEX
    ]
    text = tokenizer.decode(learned)
    assert text == "None.<|im_end|>\nYes, none.<|im_end|>\n"
    assert len(tokenize(tokenizer, messages, 10).input_ids) == 10


def test_an_edited_training_record_is_refused(
    registry: Registry, tmp_path: Path, clean_code: Path
) -> None:
    version = run(
        registry, write_config(tmp_path / "c.yaml", max_steps=1), clean_code, tmp_path / "w"
    ).version
    sql(registry, "UPDATE training_runs SET record = replace(record, '\"seed\":11', '\"seed\":12')")
    with pytest.raises(VerificationError, match="differs from the one in the audit log"):
        registry.adapters.training_run(version.ref)


def test_micro_batches_give_the_same_training(
    registry: Registry, tmp_path: Path, clean_code: Path
) -> None:
    whole = run(
        registry,
        write_config(tmp_path / "a.yaml", max_steps=3, lora={"r": 4, "alpha": 8, "dropout": 0.0}),
        clean_code,
        tmp_path / "w1",
    ).run
    # the dtype decision is measured per micro-batch size: the split run is told the
    # whole run's dtype, so the two differ only in how each step is cut (a CI run where
    # one measured float32 and the other bfloat16 differed by 1.2e-4 of the loss)
    split = run(
        registry,
        write_config(
            tmp_path / "b.yaml",
            max_steps=3,
            micro_batch_size=1,
            lora={"r": 4, "alpha": 8, "dropout": 0.0},
            compute_dtype=whole.compute_dtype,
        ),
        clean_code,
        tmp_path / "w2",
    ).run
    assert split.compute_dtype == whole.compute_dtype
    assert [p.tokens for p in split.loss_curve] == [p.tokens for p in whole.loss_curve]
    for a, b in zip(whole.loss_curve, split.loss_curve, strict=True):
        assert b.loss == pytest.approx(a.loss, rel=1e-4)


def test_records_cut_before_their_answer_are_counted(
    registry: Registry, tmp_path: Path, clean_code: Path
) -> None:
    import json

    from loraledger.trainer.datasets import add_dataset

    long_question = "Please explain, in detail, " + "and then some more " * 60 + "the fees?"
    rows = [
        {"prompt": long_question, "completion": "See the fee sheet."},
        {"prompt": "Fee?", "completion": "None."},
        {"prompt": "Hours?", "completion": "9-5."},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    add_dataset(registry, path, name="mixed", source="t", license="MIT", actor=ENGINEER)
    config = write_config(
        tmp_path / "c.yaml", datasets=["mixed"], max_steps=1, max_seq_length=96, batch_size=2
    )
    record = run(registry, config, clean_code, tmp_path / "w").run
    assert record.records_without_assistant_tokens == 1
    with pytest.raises(InputError, match="no record has assistant tokens within max_seq_length"):
        run(
            registry,
            write_config(tmp_path / "d.yaml", max_steps=1, max_seq_length=16),
            clean_code,
            tmp_path / "w2",
        )
