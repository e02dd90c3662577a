"""The training step's micro-batches (trainer/loop.py): every row once, each cut to its
micro-batch's longest row, no token and no label lost."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from loraledger.trainer.examples import IGNORE_INDEX, Example, batches
from loraledger.trainer.loop import micro_batches


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=9),
    rows=st.integers(min_value=1, max_value=10),
)
def test_micro_batches_keep_every_row_and_cut_only_padding(lengths: list[int], rows: int) -> None:
    examples = [Example(list(range(1, n + 1)), [IGNORE_INDEX, *range(2, n + 1)]) for n in lengths]
    batch = next(batches(examples, len(examples), 0, pad_id=0))
    parts = list(micro_batches(batch, rows))
    assert all(p["input_ids"].shape[0] <= rows for p in parts)

    def real(part: dict) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        return [
            (tuple(i[m == 1].tolist()), tuple(label[m == 1].tolist()))
            for i, label, m in zip(
                part["input_ids"], part["labels"], part["attention_mask"], strict=True
            )
        ]

    assert sorted(r for p in parts for r in real(p)) == sorted(real(batch))
    for part in parts:  # cut to the longest row: its last column holds a real token
        assert part["attention_mask"][:, -1].any()
    labelled = sum(int((p["labels"] != IGNORE_INDEX).sum()) for p in parts)
    assert labelled == int((batch["labels"] != IGNORE_INDEX).sum())
    if len(parts) > 1:  # longest rows first
        widths = [p["input_ids"].shape[1] for p in parts]
        assert widths == sorted(widths, reverse=True)
