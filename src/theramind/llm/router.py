"""The one entry point for model calls: roles mapped to backends, retries, usage accounting."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pydantic import BaseModel
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from theramind.config import ModelSpec, Settings
from theramind.errors import ModelError, StructuredOutputError
from theramind.llm.backends import TransientModelError, build_backend
from theramind.llm.endpoints import EndpointUsage, merge_usage
from theramind.llm.structured import (
    Attempts,
    Fallback,
    StructuredResult,
    json_schema_of,
    resolve_fallback,
    with_schema,
)
from theramind.llm.types import BaseBackend, Completion, Message, Request, Usage, UsageTotals
from theramind.llm.wire import scrub_text
from theramind.text import estimate_tokens

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)
CHARS_PER_TOKEN_CAP = 16
"""A completion is cut to this many characters per requested token (plus a margin): no
server may hand a turn more text than it was asked for."""


def text_limit(max_tokens: int) -> int:
    """The most characters a completion of `max_tokens` tokens is allowed."""
    return max_tokens * CHARS_PER_TOKEN_CAP + 1024


def cap_text(text: str, max_tokens: int) -> str:
    """Cut a completion longer than `max_tokens` could ever be."""
    limit = text_limit(max_tokens)
    return text if len(text) <= limit else text[:limit]


DATA_FAULTS = (UnicodeError, RecursionError, ValueError, OverflowError)
"""Exceptions a backend raises on odd model output (not on its own bugs): they become a
`ModelError`, so the turn degrades to a marked fallback. Anything else propagates."""


@contextmanager
def _data_faults(backend: BaseBackend) -> Iterator[None]:
    """A data fault in what the model sent becomes a `ModelError` (sync and async calls)."""
    try:
        yield
    except ModelError:
        raise
    except DATA_FAULTS as exc:  # an odd answer must degrade, not crash a turn
        log.warning("%s backend raised %s: %s", backend.name, type(exc).__name__, exc)
        raise ModelError(f"{backend.name} backend failed: {type(exc).__name__}: {exc}") from exc


def _guarded(backend: BaseBackend, request: Request) -> Completion:
    """Run a backend call; a data fault in what the model sent becomes a `ModelError`."""
    with _data_faults(backend):
        return backend.complete(request)


async def _aguarded(backend: BaseBackend, request: Request) -> Completion:
    """Async `_guarded`."""
    with _data_faults(backend):
        return await backend.acomplete(request)


class RoleTotals(UsageTotals):
    """Running totals of one role's calls, failures included (`UsageMeter`)."""


@dataclass
class UsageMeter:
    """Thread-safe per-role accounting of calls, tokens and latency."""

    roles: dict[str, RoleTotals] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, role: str, usage: Usage, *, failed: bool = False) -> None:
        """Count one call."""
        with self._lock:
            r = self.roles.setdefault(role, RoleTotals())
            r.calls += 1
            r.failures += int(failed)
            r.prompt_tokens += usage.prompt_tokens
            r.completion_tokens += usage.completion_tokens
            r.latency_s += usage.latency_s

    def snapshot(self) -> dict[str, dict[str, float]]:
        """Return a copy of the totals as plain dicts."""
        with self._lock:
            return {role: dict(vars(r)) for role, r in self.roles.items()}


class ModelRouter:
    """Maps roles (counselor, patient, judge) to backends and runs every model call.

    Transport faults (timeouts, connection errors, HTTP 5xx) are retried with exponential
    backoff; structured outputs are parsed, repaired and validated, with the validation error
    fed back to the model a bounded number of times before a fallback or a typed error.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        backends: Mapping[str, BaseBackend] | None = None,
    ) -> None:
        self.settings = settings
        self.meter = UsageMeter()
        self._backends: dict[str, BaseBackend] = dict(backends or {})
        self._shared: dict[str, BaseBackend] = {}
        self._retrying: dict[str, tuple[tuple[int, float], Retrying]] = {}
        self._lock = threading.Lock()

    # -- backends -------------------------------------------------------------------------------

    def spec(self, role: str) -> ModelSpec:
        """Return the model spec of a role."""
        try:
            return self.settings.models[role]
        except KeyError as exc:
            raise ModelError(f"no model configured for role {role!r}") from exc

    def backend(self, role: str) -> BaseBackend:
        """Return (building once) the backend of a role; equal specs share one backend."""
        with self._lock:
            if role in self._backends:
                return self._backends[role]
            spec = self.spec(role)
            key = spec.model_dump_json()
            if key not in self._shared:
                self._shared[key] = build_backend(spec)
            self._backends[role] = self._shared[key]
            return self._backends[role]

    def model_id(self, role: str) -> str:
        """Return a readable id of the model serving a role."""
        backend = self.backend(role)
        model = getattr(backend, "model", "") or self.spec(role).model
        return f"{backend.name}:{model}"

    def check(self, roles: tuple[str, ...] = ("counselor",)) -> None:
        """Fail early, with what to run, when a role's backend is unreachable."""
        for role in roles:
            self.backend(role).check()

    def endpoint_usage(self) -> dict[str, dict[str, float]]:
        """Return calls, failures, tokens and latency per model endpoint (base URL) so far."""
        totals: dict[str, EndpointUsage] = {}
        for backend in {id(b): b for b in self._backends.values()}.values():
            usage = getattr(backend, "endpoint_usage", None)
            if callable(usage):
                merge_usage(totals, usage())
        return {url: dict(vars(u)) for url, u in totals.items()}

    def close(self) -> None:
        """Close every backend."""
        for backend in {id(b): b for b in self._backends.values()}.values():
            backend.close()

    # -- plain text -----------------------------------------------------------------------------

    def _request(
        self,
        role: str,
        messages: list[Message],
        *,
        max_tokens: int | None,
        temperature: float | None,
        schema: type[BaseModel] | None = None,
        attempt: int = 0,
    ) -> Request:
        """Build a role's request; a retry (`attempt` > 0) moves a fixed seed on by `attempt`.

        With a fixed seed a deterministic model would answer a repair prompt as it answered
        the first, so a schema miss would repeat on every retry.
        """
        spec = self.spec(role)
        clean: list[Message] = [
            {"role": m["role"], "content": scrub_text(m["content"])}
            if isinstance(m.get("content"), str)
            else m
            for m in messages
        ]
        return Request(
            messages=clean,
            max_tokens=max_tokens or spec.max_tokens,
            temperature=spec.temperature if temperature is None else temperature,
            json_schema=json_schema_of(schema) if schema is not None else None,
            schema_name=schema.__name__ if schema is not None else "output",
            seed=spec.seed + attempt if spec.seed is not None else None,
            role=role,
        )

    def _retry_policy(self, role: str) -> dict[str, Any]:
        spec = self.spec(role)
        return {
            "retry": retry_if_exception_type(TransientModelError),
            "stop": stop_after_attempt(spec.retries + 1),
            "wait": wait_exponential(multiplier=spec.backoff_s, max=max(spec.backoff_s * 8, 0.01)),
            "reraise": True,
        }

    def _sync_retrying(self, role: str) -> Retrying:
        """The role's retry controller, built once and shared by every thread.

        tenacity keeps a call's state per thread, and a thread makes one call at a time, so one
        controller serves all sessions. A controller per call was a knot of reference cycles
        (about 20 objects) that only the garbage collector's slow passes could free.
        (The async path keeps one per call: coroutines of one thread interleave.) Two threads'
        first calls may each build one, unlocked; either serves, and the last one stays.
        """
        spec = self.spec(role)
        policy = (spec.retries, spec.backoff_s)  # a spec changed in place gets a new one
        found = self._retrying.get(role)
        if found is None or found[0] != policy:
            found = (policy, Retrying(**self._retry_policy(role)))
            self._retrying[role] = found
        return found[1]

    @contextmanager
    def _metered_failures(self, role: str, started: float) -> Iterator[None]:
        """Count a failed call; a transient fault that outlasted its retries becomes plain."""
        try:
            yield
        except ModelError as exc:
            self.meter.add(role, Usage(latency_s=time.perf_counter() - started), failed=True)
            if isinstance(exc, TransientModelError):
                raise ModelError(f"{role} model failed after retries: {exc}") from exc
            raise

    def _done(
        self, role: str, started: float, completion: Completion, request: Request
    ) -> Completion:
        """Count a successful call, its latency measured across retries; bound and clean it."""
        usage = replace(completion.usage, latency_s=time.perf_counter() - started)
        self.meter.add(role, usage)
        text = scrub_text(cap_text(completion.text, request.max_tokens))
        reasoning = scrub_text(cap_text(completion.reasoning, request.max_tokens))
        return replace(completion, usage=usage, text=text, reasoning=reasoning)

    def _call(self, role: str, request: Request) -> Completion:
        backend = self.backend(role)
        started = time.perf_counter()
        with self._metered_failures(role, started):
            for attempt in self._sync_retrying(role):
                with attempt:
                    completion = _guarded(backend, request)
        return self._done(role, started, completion, request)

    async def _acall(self, role: str, request: Request) -> Completion:
        """Async `_call`: the same policy, accounting and bounds; only the waiting differs."""
        backend = self.backend(role)
        started = time.perf_counter()
        with self._metered_failures(role, started):
            async for attempt in AsyncRetrying(**self._retry_policy(role)):
                with attempt:
                    completion = await _aguarded(backend, request)
        return self._done(role, started, completion, request)

    def complete(
        self,
        role: str,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        """Return a plain-text completion (reasoning split off into `Completion.reasoning`)."""
        return self._call(
            role, self._request(role, messages, max_tokens=max_tokens, temperature=temperature)
        )

    async def acomplete(
        self,
        role: str,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        """Async `complete`."""
        request = self._request(role, messages, max_tokens=max_tokens, temperature=temperature)
        return await self._acall(role, request)

    def stream(
        self,
        role: str,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]:
        """Yield the visible reply in chunks (no retries once text has been shown)."""
        request = self._request(role, messages, max_tokens=max_tokens, temperature=temperature)
        started = time.perf_counter()
        chunks: list[str] = []
        size, limit = 0, text_limit(request.max_tokens)
        backend = self.backend(role)
        try:
            for chunk in backend.stream(request):
                chunk = scrub_text(chunk)[: max(0, limit - size)]
                if not chunk:
                    break
                size += len(chunk)
                chunks.append(chunk)
                yield chunk
        except (ModelError, *DATA_FAULTS) as exc:
            self.meter.add(role, Usage(latency_s=time.perf_counter() - started), failed=True)
            if isinstance(exc, ModelError):
                raise
            raise ModelError(f"{backend.name} stream failed: {type(exc).__name__}: {exc}") from exc
        text = "".join(chunks)
        prompt = estimate_tokens("".join(m["content"] for m in messages))
        usage = Usage(prompt, estimate_tokens(text), time.perf_counter() - started)
        self.meter.add(role, usage)

    async def astream(
        self, role: str, messages: list[Message], **kwargs: Any
    ) -> AsyncIterator[str]:
        """Async wrapper over `stream` for chat applications."""
        for chunk in self.stream(role, messages, **kwargs):
            yield chunk

    # -- structured -----------------------------------------------------------------------------

    def structured(
        self,
        role: str,
        messages: list[Message],
        schema: type[T],
        *,
        fallback: Fallback[T] = None,
        context: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        retries: int | None = None,
    ) -> StructuredResult[T]:
        """Return a validated `schema` instance from a role's model.

        Raises:
            StructuredOutputError: when every attempt fails and no fallback is given.
        """
        steps = self._structured_steps(
            role, messages, schema, fallback, context, max_tokens, temperature, retries
        )
        request = next(steps)
        while True:
            try:
                answer: Completion | ModelError = self._call(role, request)
            except ModelError as exc:
                answer = exc
            try:
                request = steps.send(answer)
            except StopIteration as done:
                result: StructuredResult[T] = done.value
                return result

    async def astructured(
        self,
        role: str,
        messages: list[Message],
        schema: type[T],
        *,
        fallback: Fallback[T] = None,
        context: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        retries: int | None = None,
    ) -> StructuredResult[T]:
        """Async `structured`: the same steps, each model call awaited."""
        steps = self._structured_steps(
            role, messages, schema, fallback, context, max_tokens, temperature, retries
        )
        request = next(steps)
        while True:
            try:
                answer: Completion | ModelError = await self._acall(role, request)
            except ModelError as exc:
                answer = exc
            try:
                request = steps.send(answer)
            except StopIteration as done:
                result: StructuredResult[T] = done.value
                return result

    def _structured_steps(
        self,
        role: str,
        messages: list[Message],
        schema: type[T],
        fallback: Fallback[T],
        context: dict[str, Any] | None,
        max_tokens: int | None,
        temperature: float | None,
        retries: int | None,
    ) -> Generator[Request, Completion | ModelError, StructuredResult[T]]:
        """Run the one structured-output loop, sync and async alike.

        It yields each request and is
        sent the completion (or the call's `ModelError`); it returns the result or raises.
        """
        budget = self.settings.limits.structured_retries if retries is None else retries
        loop = Attempts(schema, with_schema(messages, schema), budget, context)
        while loop.open():
            answer = yield self._request(
                role,
                loop.convo,
                max_tokens=max_tokens,
                temperature=temperature,
                schema=schema,
                attempt=loop.count,
            )
            if isinstance(answer, ModelError):
                loop.errors.append(str(answer))
                break
            value = loop.take(answer)
            if value is not None:
                return loop.result(value)
        return self._give_up(role, fallback, loop)

    def _give_up(self, role: str, fallback: Fallback[T], loop: Attempts[T]) -> StructuredResult[T]:
        value = resolve_fallback(fallback)
        name = loop.schema.__name__
        attempts = max(loop.count, len(loop.errors))
        if value is None:
            raise StructuredOutputError(
                f"{role} model gave no valid {name} after {attempts} attempt(s): "
                + " | ".join(loop.errors[-3:]),
                attempts=attempts,
                errors=loop.errors,
                raw=loop.raw,
                usage=loop.usage,
            )
        log.warning("%s: %s fell back after %d attempt(s)", role, name, attempts)
        return StructuredResult(value, attempts, True, loop.errors, loop.usage)
