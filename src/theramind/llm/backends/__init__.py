"""Model backends, chosen by `ModelSpec.backend`."""

from __future__ import annotations

import sys

from theramind.config import ModelSpec
from theramind.errors import ConfigError, ModelError
from theramind.llm.types import BaseBackend


class TransientModelError(ModelError):
    """A fault worth retrying: timeout, dropped connection, HTTP 5xx or 429, garbled body."""


def build_backend(spec: ModelSpec) -> BaseBackend:
    """Construct the backend a spec names (imports are lazy: optional extras stay optional)."""
    if spec.backend == "openai":
        from theramind.llm.backends.openai import OpenAIBackend

        return OpenAIBackend(spec)
    if spec.backend == "llamacpp":
        from theramind.llm.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend(spec)
    if spec.backend == "vllm":
        from theramind.llm.backends.vllm_local import VLLMBackend

        return VLLMBackend(spec)
    if spec.backend == "scripted":
        from theramind.llm.backends.scripted import ScriptedBackend

        return ScriptedBackend(seed=spec.seed or 0)
    if spec.backend == "langchain":
        raise ConfigError(
            "backend 'langchain' takes a chat model object: pass it in code, e.g. "
            "TheraMind.from_config(path, chat_models={'counselor': model})"
        )
    raise ConfigError(f"unknown backend {spec.backend!r}")


def interrupt_backends(*, stop: bool = True) -> None:
    """Make in-process model calls fail at once (`stop`), or run again (`stop=False`).

    Used when a run is cancelled: worker threads cannot be killed, so their remaining calls
    must end quickly before the models are freed. Only backends already imported are touched.
    """
    module = sys.modules.get("theramind.llm.backends.llamacpp")
    if module is not None:
        if stop:
            module.interrupt_models()
        else:
            module.resume_models()


__all__ = ["TransientModelError", "build_backend", "interrupt_backends"]
