"""LoRA Ledger: provenance, a signed registry, evaluation and release governance for
QLoRA adapters.

The packages are installed under this namespace from the project's top-level folders:
``loraledger.registry`` (registry/), ``loraledger.trainer`` (trainer/),
``loraledger.harness`` (harness/), ``loraledger.policies`` (policies/) and
``loraledger.dashboard`` (dashboard/). ``loraledger.cli`` is the ``loraledger`` command.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("loraledger")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
