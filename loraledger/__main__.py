"""``python -m loraledger`` is the ``loraledger`` command."""

from loraledger.cli import main

main()
