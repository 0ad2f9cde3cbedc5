"""OpenAI-compatible HTTP backend: `vllm serve` in production, or any compatible server."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from theramind.config import ModelSpec
from theramind.errors import ModelError, ModelUnavailableError
from theramind.llm.backends import TransientModelError
from theramind.llm.parsing import split_reasoning
from theramind.llm.types import BaseBackend, Completion, Request, Usage
from theramind.llm.wire import ChatBody, delta_text, loads_bounded, read_chat_body, scrub_text
from theramind.text import estimate_tokens

log = logging.getLogger(__name__)


MAX_BODY_BYTES = 16 * 1024 * 1024
"""The largest response body read; a bigger one is a fault (no server should send it)."""


class ClientPool:
    """One keep-alive `httpx.Client` per endpoint (base URL and headers), shared by backends.

    Backends of different models on one server share its connections; the client is closed
    when the last backend using it closes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, tuple[tuple[str, str], ...]], httpx.Client] = {}
        self._users: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}

    @staticmethod
    def _key(base_url: str, headers: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
        return base_url, tuple(sorted(headers.items()))

    def acquire(self, base_url: str, headers: dict[str, str]) -> httpx.Client:
        """Return the endpoint's client (creating it), counting one more user."""
        key = self._key(base_url, headers)
        with self._lock:
            client = self._clients.get(key)
            if client is None or client.is_closed:
                client = httpx.Client(base_url=base_url, headers=headers)
                self._clients[key] = client
                self._users[key] = 0
            self._users[key] += 1
            return client

    def release(self, base_url: str, headers: dict[str, str]) -> None:
        """Count one user less; close the endpoint's client when none is left."""
        key = self._key(base_url, headers)
        with self._lock:
            if key not in self._users:
                return
            self._users[key] -= 1
            if self._users[key] <= 0:
                self._clients.pop(key).close()
                del self._users[key]

    def open_count(self) -> int:
        """How many endpoint clients are open."""
        with self._lock:
            return len(self._clients)


POOL = ClientPool()


def _scrub_messages(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages")
    if isinstance(messages, list):
        body["messages"] = [
            {k: scrub_text(v) if isinstance(v, str) else v for k, v in m.items()} for m in messages
        ]
    return body


class OpenAIBackend(BaseBackend):
    """Chat completions over HTTP, with json_schema structured outputs and reasoning split off.

    `timeout_s` is a wall-clock deadline for one call, the whole body included: a server that
    trickles bytes cannot hold a turn past it (each read waits at most `timeout_s` too).
    """

    name = "openai"

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.model = spec.model
        self.constraint = spec.structured_output or "json_schema"
        self.base_url = (spec.base_url or "").rstrip("/")
        headers = {"Content-Type": "application/json"}
        key = spec.resolved_api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._headers = headers
        self._timeout = httpx.Timeout(spec.timeout_s)
        self._client = POOL.acquire(self.base_url, headers)
        self._aclient: httpx.AsyncClient | None = None
        self._closed = False

    def payload(self, request: Request, *, stream: bool = False) -> dict[str, Any]:
        """Build the JSON body of a chat completion request."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "temperature": request.temperature,
            self.spec.max_tokens_field: request.max_tokens,
        }
        if request.json_schema is not None:
            if self.constraint == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {
                        "name": request.schema_name,
                        "schema": request.json_schema,
                        "strict": True,
                    },
                }
            elif self.constraint == "json_object":
                body["response_format"] = {"type": "json_object"}
        if request.seed is not None:
            body["seed"] = request.seed
        if stream:
            body["stream"] = True
        body.update(self.spec.extra_body)
        return body

    def _encoded(self, request: Request, *, stream: bool = False) -> bytes:
        """The request body as ASCII JSON, lone surrogates replaced (always encodable)."""
        return json.dumps(_scrub_messages(self.payload(request, stream=stream))).encode()

    def _expired(self, started: float) -> TransientModelError:
        return TransientModelError(
            f"{self.base_url} gave no complete answer within {self.spec.timeout_s}s "
            f"({time.perf_counter() - started:.1f}s)"
        )

    def _parse(self, status: int, raw: bytes, request: Request, started: float) -> Completion:
        if status in (408, 429) or status >= 500:
            raise TransientModelError(
                f"{self.base_url} answered HTTP {status}: {raw[:200].decode('utf-8', 'replace')}"
            )
        if status >= 400:
            raise ModelError(
                f"{self.base_url} rejected the request (HTTP {status}): "
                f"{raw[:300].decode('utf-8', 'replace')}"
            )
        try:
            body: ChatBody = read_chat_body(loads_bounded(raw))
        except ValueError as exc:
            raise TransientModelError(f"malformed response from {self.base_url}: {exc}") from exc
        visible, inline = split_reasoning(body.content)
        reasoning = "\n".join(p for p in (body.reasoning, inline) if p)
        prompt = body.prompt_tokens
        if prompt is None:
            prompt = sum(estimate_tokens(m["content"]) for m in request.messages)
        completion_tokens = body.completion_tokens
        if completion_tokens is None:
            completion_tokens = estimate_tokens(body.content)
        return Completion(
            text=visible,
            reasoning=reasoning,
            usage=Usage(prompt, completion_tokens, time.perf_counter() - started),
            model=body.model or self.model,
            finish_reason=body.finish_reason,
        )

    def _post(self, content: bytes, started: float) -> tuple[int, bytes]:
        """POST and read the whole body before the deadline."""
        deadline = started + self.spec.timeout_s
        with self._client.stream(
            "POST", "/chat/completions", content=content, timeout=self._timeout
        ) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if time.perf_counter() > deadline:
                    raise self._expired(started)
                if size > MAX_BODY_BYTES:
                    raise TransientModelError(f"{self.base_url} sent over {MAX_BODY_BYTES} bytes")
            return response.status_code, b"".join(chunks)

    def complete(self, request: Request) -> Completion:
        """POST one chat completion."""
        started = time.perf_counter()
        try:
            status, raw = self._post(self._encoded(request), started)
        except httpx.TimeoutException as exc:
            raise TransientModelError(f"timeout after {self.spec.timeout_s}s: {exc}") from exc
        except httpx.TransportError as exc:
            raise TransientModelError(f"cannot reach {self.base_url}: {exc}") from exc
        return self._parse(status, raw, request, started)

    async def _apost(self, content: bytes) -> tuple[int, bytes]:
        if self._aclient is None:
            self._aclient = httpx.AsyncClient(base_url=self.base_url, headers=self._headers)
        async with self._aclient.stream(
            "POST", "/chat/completions", content=content, timeout=self._timeout
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise TransientModelError(f"{self.base_url} sent over {MAX_BODY_BYTES} bytes")
            return response.status_code, b"".join(chunks)

    async def acomplete(self, request: Request) -> Completion:
        """POST one chat completion without blocking the event loop."""
        started = time.perf_counter()
        try:
            status, raw = await asyncio.wait_for(
                self._apost(self._encoded(request)), self.spec.timeout_s
            )
        except TimeoutError as exc:
            raise self._expired(started) from exc
        except httpx.TimeoutException as exc:
            raise TransientModelError(f"timeout after {self.spec.timeout_s}s: {exc}") from exc
        except httpx.TransportError as exc:
            raise TransientModelError(f"cannot reach {self.base_url}: {exc}") from exc
        return self._parse(status, raw, request, started)

    def stream(self, request: Request) -> Iterator[str]:
        """Yield visible content deltas from a server-sent event stream, within the deadline."""
        in_think = False
        started = time.perf_counter()
        deadline = started + self.spec.timeout_s
        try:
            with self._client.stream(
                "POST",
                "/chat/completions",
                content=self._encoded(request, stream=True),
                timeout=self._timeout,
            ) as response:
                if response.status_code >= 400:
                    self._parse(response.status_code, response.read(), request, started)
                for line in response.iter_lines():
                    if time.perf_counter() > deadline:
                        raise self._expired(started)
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        text = delta_text(loads_bounded(data))
                    except ValueError:
                        continue
                    if "<think>" in text:
                        in_think = True
                    if in_think:
                        if "</think>" in text:
                            in_think = False
                            text = text.split("</think>", 1)[1]
                        else:
                            continue
                    if text:
                        yield text
        except httpx.TransportError as exc:
            raise TransientModelError(f"stream from {self.base_url} broke: {exc}") from exc

    def check(self) -> None:
        """Raise a clear error naming the URL when the server is unreachable."""
        try:
            response = self._client.get("/models", timeout=min(self.spec.timeout_s, 10.0))
        except httpx.TransportError as exc:
            raise ModelUnavailableError(
                f"Cannot reach the model server at {self.base_url} ({exc}). Start one, e.g. "
                f"`vllm serve {self.model or 'MODEL'} --port 8000`, or point THERAMIND_BASE_URL "
                "at a running OpenAI-compatible server."
            ) from exc
        if response.status_code >= 500:
            raise ModelUnavailableError(
                f"The model server at {self.base_url} answers HTTP {response.status_code}."
            )

    def close(self) -> None:
        """Give the pooled client back (closed with its last user) and close the async one."""
        if self._closed:
            return
        self._closed = True
        POOL.release(self.base_url, self._headers)
        aclient, self._aclient = self._aclient, None
        if aclient is not None:
            _close_async(aclient)


def _close_async(client: httpx.AsyncClient) -> None:
    """Close an async client from sync code, on the running loop if there is one."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    try:
        if loop is not None:
            loop.create_task(client.aclose())
        else:
            asyncio.run(client.aclose())
    except Exception:  # closing is best effort: the connections die with the process
        log.debug("closing the async HTTP client failed", exc_info=True)
