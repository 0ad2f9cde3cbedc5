"""OpenAI-compatible HTTP backend: `vllm serve` in production, or any compatible server."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx

from theramind.config import ModelSpec
from theramind.errors import ModelError, ModelUnavailableError
from theramind.llm.backends import TransientModelError
from theramind.llm.parsing import split_reasoning
from theramind.llm.types import BaseBackend, Completion, Request, Usage

log = logging.getLogger(__name__)


def estimate_tokens(text: str) -> int:
    """Approximate a token count (≈ 4 characters a token) when a server reports none."""
    return (len(text) + 3) // 4


class OpenAIBackend(BaseBackend):
    """Chat completions over HTTP, with json_schema structured outputs and reasoning split off."""

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
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=spec.timeout_s)
        self._aclient: httpx.AsyncClient | None = None

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

    def _parse(self, response: httpx.Response, request: Request, started: float) -> Completion:
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise TransientModelError(
                f"{self.base_url} answered HTTP {response.status_code}: {response.text[:200]}"
            )
        if response.status_code >= 400:
            raise ModelError(
                f"{self.base_url} rejected the request (HTTP {response.status_code}): "
                f"{response.text[:300]}"
            )
        try:
            data = response.json()
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise TransientModelError(f"malformed response from {self.base_url}: {exc}") from exc
        content = message.get("content") or ""
        visible, inline = split_reasoning(content)
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        reasoning = "\n".join(p for p in (reasoning, inline) if p)
        usage = data.get("usage") or {}
        prompt = usage.get("prompt_tokens")
        if prompt is None:
            prompt = sum(estimate_tokens(m["content"]) for m in request.messages)
        completion_tokens = usage.get("completion_tokens")
        if completion_tokens is None:
            completion_tokens = estimate_tokens(content)
        return Completion(
            text=visible,
            reasoning=reasoning,
            usage=Usage(int(prompt), int(completion_tokens), time.perf_counter() - started),
            model=str(data.get("model") or self.model),
            finish_reason=choice.get("finish_reason"),
        )

    def complete(self, request: Request) -> Completion:
        """POST one chat completion."""
        started = time.perf_counter()
        try:
            response = self._client.post("/chat/completions", json=self.payload(request))
        except httpx.TimeoutException as exc:
            raise TransientModelError(f"timeout after {self.spec.timeout_s}s: {exc}") from exc
        except httpx.TransportError as exc:
            raise TransientModelError(f"cannot reach {self.base_url}: {exc}") from exc
        return self._parse(response, request, started)

    async def acomplete(self, request: Request) -> Completion:
        """POST one chat completion without blocking the event loop."""
        if self._aclient is None:
            self._aclient = httpx.AsyncClient(
                base_url=self.base_url, headers=self._headers, timeout=self.spec.timeout_s
            )
        started = time.perf_counter()
        try:
            response = await self._aclient.post("/chat/completions", json=self.payload(request))
        except httpx.TimeoutException as exc:
            raise TransientModelError(f"timeout after {self.spec.timeout_s}s: {exc}") from exc
        except httpx.TransportError as exc:
            raise TransientModelError(f"cannot reach {self.base_url}: {exc}") from exc
        return self._parse(response, request, started)

    def stream(self, request: Request) -> Iterator[str]:
        """Yield visible content deltas from a server-sent event stream."""
        in_think = False
        try:
            with self._client.stream(
                "POST", "/chat/completions", json=self.payload(request, stream=True)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    self._parse(response, request, time.perf_counter())
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        delta = json.loads(data)["choices"][0].get("delta") or {}
                    except (ValueError, KeyError, IndexError):
                        continue
                    text = delta.get("content") or ""
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
        """Close the HTTP clients."""
        self._client.close()
