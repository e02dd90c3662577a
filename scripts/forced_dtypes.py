"""The training dtypes `make test-dtypes` forces, one per line.

Both, unless this machine's automatic choice is already decided by the matmul screen at
the test models' shape (a CPU without native bfloat16, where bfloat16 multiplies several
times slower): then the tests' own run of `make test` trained in float32 already, and
forcing float32 again would repeat it, so only bfloat16 is forced. The reason goes to
stderr.
"""

from __future__ import annotations

import sys

from loraledger.trainer.compute_dtype import screened_choice

TEST_SHAPE = (512, 64)  # (rows x tokens, hidden) of the tiny test base's micro-batches


def main() -> None:
    chosen = screened_choice(*TEST_SHAPE)
    forced = [d for d in ("bfloat16", "float32") if d != chosen]
    if chosen:
        print(
            f"forced dtypes: {', '.join(forced)} ({chosen} is what auto already chose here: "
            "bfloat16 multiplies several times slower)",
            file=sys.stderr,
        )
    print("\n".join(forced))


if __name__ == "__main__":
    main()
