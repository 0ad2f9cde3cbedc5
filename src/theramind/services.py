"""The run-time services the graphs use, bundled, and the graphs' context schema."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from theramind.config import Settings, Taxonomy, load_config
from theramind.llm import BaseBackend, ModelRouter
from theramind.locales import PromptSet, load_prompts
from theramind.safety import CrisisResources, crisis_resources
from theramind.storage import PatientStore, open_store

if TYPE_CHECKING:
    from theramind.memory import VectorMemory

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a graph node needs besides its state."""

    settings: Settings
    router: ModelRouter
    store: PatientStore
    memory: VectorMemory | None
    taxonomy: Taxonomy
    resources: CrisisResources

    def prompts(self, language: str) -> PromptSet:
        """Return the prompt templates of a language (English when it has none, marked)."""
        return load_prompts(language, self.settings.config_dir_path)

    def close(self) -> None:
        """Finish memory writes, then release the model backends and the store."""
        if self.memory is not None:
            self.memory.close()
        self.router.close()
        self.store.close()


def build_services(
    settings: Settings,
    *,
    backends: Mapping[str, BaseBackend] | None = None,
    chat_models: Mapping[str, Any] | None = None,
    memory: VectorMemory | None = None,
    use_memory: bool = True,
    store: PatientStore | None = None,
) -> Services:
    """Wire the router, patient store, memory and taxonomy from settings."""
    resolved: dict[str, BaseBackend] = dict(backends or {})
    if chat_models:
        from theramind.llm.backends.langchain import LangChainBackend

        for role, model in chat_models.items():
            resolved[role] = LangChainBackend(model)
    if memory is None and use_memory:
        from theramind.memory import build_memory

        memory = build_memory(settings)
        if (
            settings.storage.backend == "postgres"
            and settings.memory.backend == "chroma"
            and not settings.memory.host
        ):
            log.warning(
                "memory: an embedded chroma store under %s serves this process alone; workers "
                "sharing the postgres store need one chroma server (set memory.host)",
                settings.memory_path,
            )
    return Services(
        settings=settings,
        router=ModelRouter(settings, backends=resolved),
        store=store or open_store(settings),
        memory=memory if use_memory else None,
        taxonomy=settings.taxonomy(),
        resources=crisis_resources(settings.safety.locale, settings.config_dir_path),
    )


@functools.cache
def services_for_config(config_path: str | None) -> Services:
    """Build (once per process) services from a config file, for servers such as `langgraph dev`."""
    return build_services(load_config(config_path))


@dataclass
class CounselContext:
    """Run-time context of both graphs: who, which session, and the services to use.

    `profile` (a `PatientProfile` as a mapping) lets a client of a graph server register a
    new patient on the first turn of their first session.
    """

    patient_id: str
    session_no: int
    config_path: str | None = None
    profile: dict[str, Any] | None = None
    services: Services | None = field(default=None, repr=False)
    lease_owner: str | None = None
    """The `Session` handle writing this session (None: a server run without one)."""

    def resolve(self) -> Services:
        """Return the injected services, or build them from `config_path`."""
        return self.services or services_for_config(self.config_path)
