"""OpenAI-compatible HTTP backend: `vllm serve` in production, or any compatible server."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from theramind.config import ModelSpec
from theramind.errors import ModelError, ModelUnavailableError
from theramind.llm.backends import TransientModelError
from theramind.llm.endpoints import CLIENTS, ClientPool, Endpoint, EndpointPool, EndpointUsage
from theramind.llm.parsing import split_reasoning
from theramind.llm.types import BaseBackend, Completion, Request, Usage
from theramind.llm.wire import ChatBody, delta_text, loads_bounded, read_chat_body, scrub_text
from theramind.text import estimate_tokens

log = logging.getLogger(__name__)


MAX_BODY_BYTES = 16 * 1024 * 1024
"""The largest response body read; a bigger one is a fault (no server should send it)."""


POOL: ClientPool = CLIENTS
"""The process's keep-alive clients (one per endpoint), shared by every backend."""


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
        self.urls = [u.rstrip("/") for u in spec.base_urls]
        self.base_url = self.urls[0] if self.urls else ""
        headers = {"Content-Type": "application/json"}
        key = spec.resolved_api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._headers = headers
        self._timeout = httpx.Timeout(spec.timeout_s)
        self.endpoints = EndpointPool(self.urls, headers, retry_after_s=spec.endpoint_retry_s)
        self._aclients: dict[str, httpx.AsyncClient] = {}
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

    def _expired(self, url: str, started: float) -> TransientModelError:
        return TransientModelError(
            f"{url} gave no complete answer within {self.spec.timeout_s}s "
            f"({time.perf_counter() - started:.1f}s)"
        )

    def _parse(
        self, url: str, status: int, raw: bytes, request: Request, started: float
    ) -> Completion:
        if status in (408, 429) or status >= 500:
            raise TransientModelError(
                f"{url} answered HTTP {status}: {raw[:200].decode('utf-8', 'replace')}"
            )
        if status >= 400:
            raise ModelError(
                f"{url} rejected the request (HTTP {status}): "
                f"{raw[:300].decode('utf-8', 'replace')}"
            )
        try:
            body: ChatBody = read_chat_body(loads_bounded(raw))
        except ValueError as exc:
            raise TransientModelError(f"malformed response from {url}: {exc}") from exc
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

    def _settle(
        self,
        endpoint: Endpoint,
        started: float,
        completion: Completion | None,
        error: BaseException | None = None,
    ) -> None:
        """Count a finished call on its endpoint; a transient fault takes the endpoint out."""
        usage = completion.usage if completion is not None else Usage()
        self.endpoints.release(
            endpoint,
            failed=isinstance(error, TransientModelError),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            latency_s=time.perf_counter() - started,
            reason=str(error) if error is not None else "",
        )

    def _post(self, endpoint: Endpoint, content: bytes, started: float) -> tuple[int, bytes]:
        """POST and read the whole body before the deadline."""
        deadline = started + self.spec.timeout_s
        with endpoint.client.stream(
            "POST", "/chat/completions", content=content, timeout=self._timeout
        ) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if time.perf_counter() > deadline:
                    raise self._expired(endpoint.url, started)
                if size > MAX_BODY_BYTES:
                    raise TransientModelError(f"{endpoint.url} sent over {MAX_BODY_BYTES} bytes")
            return response.status_code, b"".join(chunks)

    @contextmanager
    def _transport_errors(self, url: str) -> Iterator[None]:
        """Turn a timeout or a connection failure of one endpoint into a transient error."""
        try:
            yield
        except httpx.TimeoutException as exc:
            limit = self.spec.timeout_s
            raise TransientModelError(f"{url}: timeout after {limit}s: {exc}") from exc
        except httpx.TransportError as exc:
            raise TransientModelError(f"cannot reach {url}: {exc}") from exc

    def complete(self, request: Request) -> Completion:
        """POST one chat completion to the least-loaded endpoint."""
        started = time.perf_counter()
        endpoint = self.endpoints.acquire()
        completion: Completion | None = None
        try:
            with self._transport_errors(endpoint.url):
                status, raw = self._post(endpoint, self._encoded(request), started)
            completion = self._parse(endpoint.url, status, raw, request, started)
        except BaseException as exc:
            self._settle(endpoint, started, None, exc)
            raise
        self._settle(endpoint, started, completion)
        return completion

    async def _apost(self, endpoint: Endpoint, content: bytes) -> tuple[int, bytes]:
        client = self._aclients.get(endpoint.url)
        if client is None:
            client = httpx.AsyncClient(base_url=endpoint.url, headers=self._headers)
            self._aclients[endpoint.url] = client
        async with client.stream(
            "POST", "/chat/completions", content=content, timeout=self._timeout
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise TransientModelError(f"{endpoint.url} sent over {MAX_BODY_BYTES} bytes")
            return response.status_code, b"".join(chunks)

    async def acomplete(self, request: Request) -> Completion:
        """POST one chat completion without blocking the event loop."""
        started = time.perf_counter()
        endpoint = self.endpoints.acquire()
        completion: Completion | None = None
        try:
            try:
                with self._transport_errors(endpoint.url):
                    status, raw = await asyncio.wait_for(
                        self._apost(endpoint, self._encoded(request)), self.spec.timeout_s
                    )
            except TimeoutError as exc:
                raise self._expired(endpoint.url, started) from exc
            completion = self._parse(endpoint.url, status, raw, request, started)
        except BaseException as exc:
            self._settle(endpoint, started, None, exc)
            raise
        self._settle(endpoint, started, completion)
        return completion

    def stream(self, request: Request) -> Iterator[str]:
        """Yield visible content deltas from a server-sent event stream, within the deadline."""
        in_think = False
        started = time.perf_counter()
        deadline = started + self.spec.timeout_s
        with self.endpoints.lease((TransientModelError,)) as endpoint:
            try:
                with endpoint.client.stream(
                    "POST",
                    "/chat/completions",
                    content=self._encoded(request, stream=True),
                    timeout=self._timeout,
                ) as response:
                    if response.status_code >= 400:
                        self._parse(
                            endpoint.url, response.status_code, response.read(), request, started
                        )
                    for line in response.iter_lines():
                        if time.perf_counter() > deadline:
                            raise self._expired(endpoint.url, started)
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
                raise TransientModelError(f"stream from {endpoint.url} broke: {exc}") from exc

    def _probe(self, endpoint: Endpoint) -> str | None:
        """Return why an endpoint does not answer `/models`, or None when it does."""
        try:
            response = endpoint.client.get("/models", timeout=min(self.spec.timeout_s, 10.0))
        except httpx.TransportError as exc:
            return f"cannot reach {endpoint.url} ({exc})"
        if response.status_code >= 500:
            return f"{endpoint.url} answers HTTP {response.status_code}"
        return None

    def check(self) -> None:
        """Raise a clear error naming the URLs when no endpoint of the role answers.

        With several endpoints one that answers is enough: the others are logged and taken
        out until their retry time.
        """
        down = {e.url: why for e in self.endpoints.endpoints if (why := self._probe(e))}
        if len(down) < len(self.urls):
            for url, why in down.items():
                log.warning("model endpoint down: %s; calls go to the others", why)
                self.endpoints.mark_out(url)
            return
        if len(self.urls) > 1:
            raise ModelUnavailableError(
                "None of the model servers answers: " + "; ".join(down.values()) + ". Start "
                "them (e.g. `vllm serve MODEL --port 8000`) or fix the role's base_url list."
            )
        why = down[self.base_url]
        if why.startswith("cannot reach"):
            raise ModelUnavailableError(
                f"Cannot reach the model server at {self.base_url} {why.split(' ', 3)[3]}. "
                f"Start one, e.g. `vllm serve {self.model or 'MODEL'} --port 8000`, or point "
                "THERAMIND_BASE_URL at a running OpenAI-compatible server."
            )
        raise ModelUnavailableError(f"The model server at {why}.")

    def endpoint_usage(self) -> dict[str, EndpointUsage]:
        """Return the calls, failures, tokens and latency of each endpoint so far."""
        return self.endpoints.usage()

    def close(self) -> None:
        """Give the pooled clients back (closed with their last user) and close the async ones."""
        if self._closed:
            return
        self._closed = True
        self.endpoints.close()
        aclients, self._aclients = list(self._aclients.values()), {}
        for aclient in aclients:
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
