"""The LoRA Ledger registry (loraledger.registry): a DuckDB database and a
content-addressed store of signed adapter versions, with a tamper-evident audit log.

Typical use::

    from loraledger.registry import Registry

    reg = Registry.open(Path(".loraledger"))
    version = reg.adapters.register(Path("out/adapter"), "bank-support", actor="eve")
    reg.adapters.verify(version.ref)
    with reg.adapters.open_verified(version.ref) as (version, path):
        ...  # load the adapter from ``path``

This package never imports torch or transformers.
"""

from .models import (
    AdapterVersion,
    AuditEvent,
    AuditReport,
    BaseModelVersion,
    Checkpoint,
    DatasetVersion,
    FileEntry,
    Identity,
    IdentityStatus,
    Role,
    TrainingRun,
    VerificationReport,
)
from .permissions import PERMISSIONS, Action
from .refs import Ref
from .registry import Registry, default_registry_path

__all__ = [
    "PERMISSIONS",
    "Action",
    "AdapterVersion",
    "AuditEvent",
    "AuditReport",
    "BaseModelVersion",
    "Checkpoint",
    "DatasetVersion",
    "FileEntry",
    "Identity",
    "IdentityStatus",
    "Ref",
    "Registry",
    "Role",
    "TrainingRun",
    "VerificationReport",
    "default_registry_path",
]
