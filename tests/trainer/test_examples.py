"""Training batches (trainer/examples.py): each epoch a permutation fixed by (seed, epoch),
padded on the right with the pad id and with labels that never train on padding."""

from __future__ import annotations

from itertools import islice

from loraledger.trainer.examples import IGNORE_INDEX, Example, batches

EXAMPLES = [
    Example(list(range(1, n + 1)), [IGNORE_INDEX, *range(2, n + 1)]) for n in (2, 3, 4, 5, 6)
]


def rows(seed: int, count: int) -> list[list[list[int]]]:
    return [b["input_ids"].tolist() for b in islice(batches(EXAMPLES, 2, seed, pad_id=0), count)]


def test_the_same_seed_gives_the_same_batches_and_another_seed_others() -> None:
    assert rows(7, 6) == rows(7, 6)
    assert rows(7, 6) != rows(8, 6)


def test_padding_is_masked_and_never_a_label() -> None:
    for batch in islice(batches(EXAMPLES, 2, 1, pad_id=0), 4):
        ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
        assert ids.shape == labels.shape == mask.shape and ids.shape[0] == 2
        assert ((mask == 0) <= (labels == IGNORE_INDEX)).all()  # padding never trains
        assert ((mask == 0) <= (ids == 0)).all()


def test_each_epoch_holds_whole_batches_only() -> None:
    # five examples in batches of two: an epoch is two batches, the fifth waits
    first_epoch = [row for batch in rows(3, 2) for row in batch]
    assert len(first_epoch) == 4 and len({tuple(r) for r in first_epoch}) == 4
