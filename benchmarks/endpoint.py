"""Model endpoints for the benchmarks: the stub server in a child process, or an external server.

Both keep a wire log, one `WireCall` per HTTP request with its time interval and tokens, so
calls, calls in sequence and tokens are counted outside the framework. The stub's log is the
server's own (its fixed token rule, the same for every counselor); for an external server the
log is kept on the client side and the server's `/metrics` counters, where it has them (vLLM
does), give a server-side cross-check of the totals.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Self

import httpx

from theramind.config import ModelSpec
from theramind.llm import BaseBackend
from theramind.llm.backends import build_backend
from theramind.llm.fake import request_rng, schema_instance
from theramind.llm.types import Completion, Request
from theramind.testing.stub_server import StubConfig, StubServer
from theramind.text import estimate_tokens

log = logging.getLogger(__name__)

VLLM_COUNTERS = (
    "vllm:request_success_total",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
)


@dataclass(frozen=True)
class WireCall:
    """One request on the wire: when the model was busy with it, and its tokens."""

    start: float
    end: float
    prompt_tokens: int
    completion_tokens: int
    schema: str = ""


def plausible_reply(body: dict[str, Any]) -> str | None:
    """Answer structured requests as the stub does, for a calm patient who is not leaving.

    The stub draws every field at random, so a quarter of its perceptions report high risk and
    a fifth a wish to end; the benchmarks measure ordinary turns, and session length is left to
    the scripted patient, the same for every counselor. Plain requests keep the stub's answer.
    """
    fmt = body.get("response_format") or {}
    schema = (
        (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
    )
    if schema is None:
        return None
    prompt = "".join(str(m.get("content", "")) for m in body.get("messages") or [])
    value = schema_instance(schema, request_rng(0, prompt))
    if isinstance(value, dict):
        if "risk_level" in value:
            value["risk_level"] = "none"
            value["risk_evidence"] = ""
        if "wants_to_end" in value:
            value["wants_to_end"] = False
    return json.dumps(value)


def _schema_name(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or {}
    return str((fmt.get("json_schema") or {}).get("name") or "")


def _serve(latency_s: float, conn: Connection) -> None:
    """Run the stub in this (child) process and answer log queries over `conn`."""
    stub = StubServer(StubConfig(latency_s=latency_s, reply=plausible_reply)).start()
    conn.send(stub.base_url)
    try:
        while True:
            command, arg = conn.recv()
            if command == "log":
                lat = stub.state.config.latency_s
                conn.send(
                    [
                        WireCall(
                            r.at - lat,
                            r.at,
                            r.prompt_tokens,
                            r.completion_tokens,
                            _schema_name(r.body),
                        )
                        for r in stub.requests[arg:]
                    ]
                )
            elif command == "count":
                conn.send(len(stub.requests))
            elif command == "latency":
                stub.state.config.latency_s = float(arg)
                conn.send(None)
            else:
                conn.send(None)
                return
    except EOFError:
        return
    finally:
        stub.stop()


class Endpoint:
    """Where the counselor's model calls go, and the log of what went there."""

    label = "endpoint"
    server_side_log = False

    def model(self) -> dict[str, Any]:
        """Return the model spec (a mapping for `load_config`) every role uses."""
        raise NotImplementedError

    def backends(self) -> dict[str, BaseBackend] | None:
        """Return backends to inject per role (None: the framework builds its own)."""
        return None

    def mark(self) -> int:
        """Return a position in the wire log."""
        raise NotImplementedError

    def since(self, mark: int) -> list[WireCall]:
        """Return the wire calls logged after `mark`."""
        raise NotImplementedError

    def set_latency(self, seconds: float) -> float | None:
        """Inject `seconds` per call where possible; return the latency now injected."""
        return None

    def counters(self) -> dict[str, float] | None:
        """Return the server's own cumulative counters, where it publishes them."""
        return None

    def close(self) -> None:
        """Release the endpoint."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StubEndpoint(Endpoint):
    """The stub server, run in a child process so its work never shares our interpreter."""

    label = "stub (OpenAI-compatible, child process)"
    server_side_log = True

    def __init__(self, latency_s: float = 0.0) -> None:
        # fork: the child needs nothing but what is imported already, and no caller needs a
        # main-module guard; spawn where fork does not exist.
        ctx = (
            multiprocessing.get_context("fork")
            if "fork" in multiprocessing.get_all_start_methods()
            else multiprocessing.get_context("spawn")
        )
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(latency_s, child), daemon=True)
        self._proc.start()
        child.close()
        try:
            if not self._conn.poll(120):
                raise EOFError("no answer within 120 s")
            self.base_url: str = self._conn.recv()
        except EOFError as exc:
            self._proc.kill()
            raise RuntimeError(f"the stub server process did not start: {exc}") from exc
        self.latency_s = latency_s
        self._lock = threading.Lock()

    def _ask(self, command: str, arg: Any = None) -> Any:
        with self._lock:
            self._conn.send((command, arg))
            return self._conn.recv()

    def model(self) -> dict[str, Any]:
        """Point every role at the stub, with json_schema structured outputs."""
        return {
            "backend": "openai",
            "base_url": self.base_url,
            "model": "stub",
            "structured_output": "json_schema",
        }

    def mark(self) -> int:
        """Return the number of requests the stub has logged."""
        return int(self._ask("count"))

    def since(self, mark: int) -> list[WireCall]:
        """Return the stub's log entries after `mark`."""
        return list(self._ask("log", mark))

    def set_latency(self, seconds: float) -> float:
        """Set the stub's injected latency per request."""
        self._ask("latency", seconds)
        self.latency_s = seconds
        return seconds

    def close(self) -> None:
        """Stop the stub process."""
        if self._proc.is_alive():
            try:
                self._ask("stop")
            except (EOFError, OSError, BrokenPipeError):
                log.debug("stub already gone")
            self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()


class RecordingBackend(BaseBackend):
    """Wraps a backend and logs every request's interval and tokens on the client side."""

    def __init__(self, inner: BaseBackend, sink: list[WireCall], lock: threading.Lock) -> None:
        self.inner = inner
        self.name = inner.name
        self.constraint = inner.constraint
        self.model = getattr(inner, "model", "")
        self._sink = sink
        self._lock = lock

    def _add(self, start: float, request: Request, prompt: int, completion: int) -> None:
        call = WireCall(
            start,
            time.time(),
            prompt,
            completion,
            request.schema_name if request.json_schema is not None else "",
        )
        with self._lock:
            self._sink.append(call)

    def complete(self, request: Request) -> Completion:
        """Run the request on the wrapped backend and log it."""
        start = time.time()
        prompt = completion = 0
        try:
            out = self.inner.complete(request)
            prompt, completion = out.usage.prompt_tokens, out.usage.completion_tokens
            return out
        finally:
            self._add(start, request, prompt, completion)

    def stream(self, request: Request) -> Iterator[str]:
        """Stream from the wrapped backend and log the request when it ends."""
        start = time.time()
        chunks: list[str] = []
        try:
            for chunk in self.inner.stream(request):
                chunks.append(chunk)
                yield chunk
        finally:
            prompt = sum(estimate_tokens(m["content"]) for m in request.messages)
            self._add(start, request, prompt, estimate_tokens("".join(chunks)))

    def check(self) -> None:
        """Check the wrapped backend."""
        self.inner.check()

    def close(self) -> None:
        """Close the wrapped backend."""
        self.inner.close()


class ExternalEndpoint(Endpoint):
    """An external OpenAI-compatible server (e.g. `vllm serve`), logged on the client side."""

    server_side_log = False

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "default",
        structured_output: str = "json_schema",
        api_key_env: str = "THERAMIND_API_KEY",
        timeout_s: float = 120.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.label = f"external server {self.base_url} (model {model})"
        self._spec: dict[str, Any] = {
            "backend": "openai",
            "base_url": self.base_url,
            "model": model,
            "structured_output": structured_output,
            "api_key_env": api_key_env,
            "timeout_s": timeout_s,
        }
        self._log: list[WireCall] = []
        self._lock = threading.Lock()

    def model(self) -> dict[str, Any]:
        """Return the external server's spec."""
        return dict(self._spec)

    def backends(self) -> dict[str, BaseBackend]:
        """Return recording backends for every role (fresh HTTP clients, one shared log)."""
        inner = build_backend(ModelSpec.model_validate(self._spec))
        wrapped = RecordingBackend(inner, self._log, self._lock)
        return {"counselor": wrapped, "patient": wrapped, "judge": wrapped}

    def mark(self) -> int:
        """Return the number of logged requests."""
        with self._lock:
            return len(self._log)

    def since(self, mark: int) -> list[WireCall]:
        """Return the requests logged after `mark`."""
        with self._lock:
            return list(self._log[mark:])

    def counters(self) -> dict[str, float] | None:
        """Read vLLM's request and token counters from `/metrics` (None when absent)."""
        root = self.base_url.removesuffix("/v1")
        try:
            response = httpx.get(f"{root}/metrics", timeout=5.0)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        totals: dict[str, float] = {}
        for line in response.text.splitlines():
            for name in VLLM_COUNTERS:
                if line.startswith((name + "{", name + " ")):
                    value = line.rsplit(" ", 1)[-1]
                    totals[name] = totals.get(name, 0.0) + float(value)
        return totals or None


def open_endpoint(base_url: str | None, **kwargs: Any) -> Endpoint:
    """Return an external endpoint for `base_url`, else a fresh stub."""
    if base_url:
        return ExternalEndpoint(base_url, **kwargs)
    return StubEndpoint()


class InProcessEndpoint(Endpoint):
    """A model inside this process (llama.cpp, scripted): no wire, so an empty log."""

    def __init__(self, model: str | dict[str, Any], label: str = "in-process model") -> None:
        self._model = model
        self.label = label

    def model(self) -> dict[str, Any]:
        """Return the model spec, a preset name becoming `{"preset": name}`."""
        return {"preset": self._model} if isinstance(self._model, str) else dict(self._model)

    def mark(self) -> int:
        """Return 0: nothing is logged."""
        return 0

    def since(self, mark: int) -> list[WireCall]:
        """Return no calls."""
        return []
