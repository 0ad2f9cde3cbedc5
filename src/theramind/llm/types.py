"""Messages, completions and the backend protocol shared by every model backend."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict


class Message(TypedDict):
    """One chat message."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Usage:
    """Token counts and wall time of one model call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


@dataclass
class UsageTotals:
    """Running totals of model calls: how many, how many failed, their tokens and time."""

    calls: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0

    def add(self, other: UsageTotals) -> None:
        """Add another count."""
        self.calls += other.calls
        self.failures += other.failures
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.latency_s += other.latency_s


@dataclass(frozen=True)
class Completion:
    """What a backend returned: the visible text, the reasoning kept apart, and the cost."""

    text: str
    reasoning: str = ""
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    finish_reason: str | None = None


@dataclass(frozen=True)
class Request:
    """One model request, backend-neutral."""

    messages: list[Message]
    max_tokens: int
    temperature: float
    json_schema: dict[str, Any] | None = None
    schema_name: str = "output"
    seed: int | None = None
    role: str = ""


class BaseBackend:
    """Defaults shared by backends: async via a worker thread, streaming as one chunk."""

    name = "base"
    constraint: Literal["json_schema", "json_object", "grammar", "prompt"] = "prompt"

    def complete(self, request: Request) -> Completion:  # pragma: no cover - abstract
        """Run a request and return its completion."""
        raise NotImplementedError

    async def acomplete(self, request: Request) -> Completion:
        """Run a request without blocking the event loop."""
        return await asyncio.to_thread(self.complete, request)

    def stream(self, request: Request) -> Iterator[str]:
        """Yield the reply in chunks (backends that can stream override this)."""
        yield self.complete(request).text

    def check(self) -> None:
        """Raise `ModelUnavailableError` when the backend cannot serve (default: no check)."""

    def close(self) -> None:
        """Release resources."""
