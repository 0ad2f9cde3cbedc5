"""A scripted model for tests: queued replies per role, a handler, or plausible valid output."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from theramind.llm.fake import request_rng, schema_instance
from theramind.llm.parsing import split_reasoning
from theramind.llm.types import BaseBackend, Completion, Request, Usage
from theramind.text import estimate_tokens

Reply = str | dict[str, Any] | BaseModel | Completion | Exception
Handler = Callable[[Request], Reply | None]


class ScriptedBackend(BaseBackend):
    """Deterministic model that records every call.

    A reply is taken, in order, from the role's queue, then from `handler` (which may return
    None to pass), then made up: a schema-valid instance for structured calls (seeded by the
    request text, so it does not depend on call order) or a short counselor-like sentence.
    An `Exception` in the queue is raised instead of answering, to inject faults.
    """

    name = "scripted"
    constraint = "json_schema"
    model = "scripted"

    def __init__(
        self,
        script: Mapping[str, Iterable[Reply]] | None = None,
        *,
        handler: Handler | None = None,
        seed: int = 0,
    ) -> None:
        self._queues: dict[str, deque[Reply]] = {
            role: deque(replies) for role, replies in (script or {}).items()
        }
        self.handler = handler
        self.seed = seed
        self.calls: list[Request] = []
        self._lock = threading.Lock()

    def push(self, role: str, *replies: Reply) -> None:
        """Queue replies for a role."""
        with self._lock:
            self._queues.setdefault(role, deque()).extend(replies)

    def pending(self, role: str) -> int:
        """Return how many queued replies a role has left."""
        with self._lock:
            return len(self._queues.get(role, ()))

    def calls_for(self, role: str) -> list[Request]:
        """Return the recorded requests of one role."""
        with self._lock:
            return [c for c in self.calls if c.role == role]

    def _next(self, request: Request) -> Reply:
        with self._lock:
            self.calls.append(request)
            queue = self._queues.get(request.role)
            if queue:
                return queue.popleft()
        if self.handler is not None:
            reply = self.handler(request)
            if reply is not None:
                return reply
        rng = request_rng(self.seed, *(m["content"] for m in request.messages))
        if request.json_schema is not None:
            return schema_instance(request.json_schema, rng)
        return rng.choice(
            [
                "It sounds like this has been weighing on you. What feels hardest right now?",
                "Thank you for telling me. How did that leave you feeling?",
                "You have been carrying a lot. What would help you most today?",
            ]
        )

    def complete(self, request: Request) -> Completion:
        """Answer from the script."""
        reply = self._next(request)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, Completion):
            return reply
        if isinstance(reply, BaseModel):
            text = reply.model_dump_json()
        elif isinstance(reply, dict):
            text = json.dumps(reply)
        else:
            text = str(reply)
        visible, reasoning = split_reasoning(text)
        prompt = sum(estimate_tokens(m["content"]) for m in request.messages)
        return Completion(
            text=visible,
            reasoning=reasoning,
            usage=Usage(prompt, estimate_tokens(text), 0.0),
            model="scripted",
            finish_reason="stop",
        )
