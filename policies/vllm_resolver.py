"""A vLLM LoRA resolver that loads only what an environment runs, verified.

vLLM (0.33) asks its registered ``LoRAResolver``s for an adapter when a request names one
it has not loaded (runtime LoRA loading: ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``). This
module's :func:`register` -- the ``vllm.general_plugins`` entry point ``loraledger`` --
registers :class:`LedgerResolver`, which answers through
:func:`.resolving.resolve_promoted`: the exact version the configured environment runs,
on the engine's base, every link verified, from a verified copy; anything else is
refused (``None``, with the reason logged at WARNING).

Configured by the environment of the vLLM process::

    LORALEDGER_REGISTRY=/srv/ledger/.loraledger   # or postgresql://...
    LORALEDGER_VLLM_ENV=production                 # the environment served
    LORALEDGER_VLLM_DIR=/srv/vllm-adapters         # where verified copies are written
    VLLM_ALLOW_RUNTIME_LORA_UPDATING=True
    VLLM_PLUGINS=loraledger                        # load no other plugin (no other resolver)

Without ``LORALEDGER_VLLM_ENV`` the plugin registers nothing (it is loaded in every vLLM
process of a machine it is installed on). docs/serving.md says what vLLM does with a name
it has loaded (it keeps it until it is unloaded or the server restarts) and how
``loraledger serve --check`` finds such drift.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loraledger.registry import Registry

from loraledger.errors import LedgerError

from .resolving import resolve_promoted

RESOLVER_NAME = "loraledger"
REGISTRY_ENV = "LORALEDGER_REGISTRY"
ENVIRONMENT_ENV = "LORALEDGER_VLLM_ENV"
DIRECTORY_ENV = "LORALEDGER_VLLM_DIR"

logger = logging.getLogger("loraledger.vllm")


def _resolver_class() -> type:
    """The resolver, defined on vLLM's base class (imported only inside vLLM)."""
    from vllm.lora.request import LoRARequest
    from vllm.lora.resolver import LoRAResolver

    class LedgerResolver(LoRAResolver):  # type: ignore[misc]
        """Resolves ``NAME@vN`` to a verified copy when ``environment`` runs it."""

        def __init__(
            self, open_registry: Callable[[], Registry], environment: str, directory: Path
        ) -> None:
            self.open_registry = open_registry
            self.environment = environment
            self.directory = directory

        async def resolve_lora(self, base_model_name: str, lora_name: str) -> Any:
            # registry reads and file hashing block: off the event loop
            return await asyncio.to_thread(self.resolve, base_model_name, lora_name)

        def resolve(self, base_model_name: str, lora_name: str) -> Any:
            try:
                resolved = resolve_promoted(
                    self.open_registry(), self.environment, base_model_name, lora_name,
                    self.directory,
                )  # fmt: skip
            except LedgerError as error:
                logger.warning("loraledger refused LoRA %r: %s", lora_name, error)
                return None
            logger.info(
                "loraledger resolved LoRA %r: %s in %s (deployment #%d), digest %s, at %s",
                lora_name, resolved.deployment.adapter, self.environment,
                resolved.deployment.seq, resolved.deployment.artifact_digest, resolved.path,
            )  # fmt: skip
            return LoRARequest(
                lora_name=lora_name,
                lora_int_id=int(resolved.deployment.artifact_digest[:12], 16) or 1,
                lora_path=str(resolved.path),
                base_model_name=base_model_name,
            )

    return LedgerResolver


def make_resolver(open_registry: Callable[[], Registry], environment: str, directory: Path) -> Any:
    """A :class:`LedgerResolver` (a vLLM ``LoRAResolver``)."""
    return _resolver_class()(open_registry, environment, directory)


def register() -> None:
    """The ``vllm.general_plugins`` entry point: register the resolver when the process's
    environment names a LoRA Ledger environment to serve."""
    environment = os.environ.get(ENVIRONMENT_ENV)
    if not environment:
        logger.info("loraledger: %s is not set; no LoRA resolver registered", ENVIRONMENT_ENV)
        return
    address = os.environ.get(REGISTRY_ENV, ".loraledger")
    directory = Path(os.environ.get(DIRECTORY_ENV) or Path.home() / ".cache/loraledger/vllm")
    from vllm.lora.resolver import LoRAResolverRegistry

    def open_registry() -> Registry:
        where: Path | str = address if address.startswith("postgresql://") else Path(address)
        return Registry.open(where)

    LoRAResolverRegistry.register_resolver(
        RESOLVER_NAME, make_resolver(open_registry, environment, directory)
    )
    logger.info("loraledger: LoRA resolver for %s of %s registered", environment, address)


__all__ = ["RESOLVER_NAME", "make_resolver", "register"]
