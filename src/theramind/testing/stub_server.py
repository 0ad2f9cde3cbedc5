"""A local OpenAI-compatible stub server: valid answers, injected latency and faults, a request log.

Used by the tests (protocol, faults) and the benchmarks (cost per turn, throughput). It answers
structured requests with a schema-valid instance, plain requests with a short sentence, and
counts tokens with one fixed rule (about four characters a token) for every client.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from theramind.llm.fake import request_rng, schema_instance
from theramind.testing import shapes
from theramind.testing.shapes import SHAPES
from theramind.text import estimate_tokens, token_chars

log = logging.getLogger(__name__)

FAULTS = tuple(SHAPES)
"""Every fault the stub can inject (see `theramind.testing.shapes`)."""


@dataclass
class StubRequest:
    """One request as the stub saw it."""

    at: float
    body: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    structured: bool
    fault: str | None = None
    peer: int = 0
    """The client's port: requests on one keep-alive connection share it."""


@dataclass
class StubConfig:
    """How the stub behaves."""

    latency_s: float = 0.0
    capacity: int | None = None
    """Requests worked on at once (a replica's batch); the others wait their turn. None: all."""
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULTS
    timeout_sleep_s: float = 5.0
    trickle_s: float = 2.0
    """How long a `trickle` answer takes to send, in total."""
    reasoning: str | None = None
    inline_think: bool = False
    seed: int = 0
    reject_json_schema: bool = False
    reply: Callable[[dict[str, Any]], str | None] | None = None


@dataclass
class StubState:
    """Shared mutable state: the config, the request log and the fault generator."""

    config: StubConfig
    requests: list[StubRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    forced: list[str] = field(default_factory=list)
    slots: threading.Semaphore | None = None


def _break(value: dict[str, Any], schema: dict[str, Any], fault: str) -> dict[str, Any]:
    props = schema.get("properties", {})
    out = dict(value)
    for name, prop in props.items():
        if fault == "out_of_range" and "maximum" in prop:
            out[name] = prop["maximum"] + 5
            return out
        if fault == "wrong_enum" and "enum" in prop:
            out[name] = "not-a-label"
            return out
    return out


class _Handler(BaseHTTPRequestHandler):
    server_version = "theramind-stub/1"
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    disable_nagle_algorithm = True
    """TCP_NODELAY, as real servers set it: with Nagle on, the reply's headers and body (two
    writes) met the client's delayed ACK, and every call took about 45 ms longer than asked."""
    state: StubState

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("stub: " + format, *args)

    def _send(
        self,
        status: int,
        payload: Any,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> None:
        body = raw if raw is not None else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (a deadline): nothing to answer
            self.close_connection = True

    def _send_shaped(self, fault: str, body: bytes) -> None:
        """Send a body with a transport-level shape."""
        try:
            if fault == "truncated_body":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) + 500))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            pieces = 20
            step = max(1, -(-len(body) // pieces))
            for i in range(0, len(body), step):
                self.wfile.write(body[i : i + step])
                self.wfile.flush()
                time.sleep(self.state.config.trickle_s / pieces)
        except OSError:
            self.close_connection = True

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length", 0))
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send(400, {"error": "bad json"})
            return
        self._complete(body)

    def _pick_fault(self) -> str | None:
        st = self.state
        with st.lock:
            if st.forced:
                return st.forced.pop(0)
            if st.config.fault_rate and st.rng.random() < st.config.fault_rate:
                return st.rng.choice(st.config.faults)
        return None

    def _complete(self, body: dict[str, Any]) -> None:
        cfg = self.state.config
        if cfg.latency_s:
            if self.state.slots is not None:
                with self.state.slots:
                    time.sleep(cfg.latency_s)
            else:
                time.sleep(cfg.latency_s)
        messages = body.get("messages") or []
        prompt_text = "".join(str(m.get("content", "")) for m in messages)
        fmt = body.get("response_format") or {}
        schema = (
            (fmt.get("json_schema") or {}).get("schema")
            if fmt.get("type") == "json_schema"
            else None
        )
        if schema is not None and cfg.reject_json_schema:
            self._send(500, {"error": "json_schema is not supported"})
            return
        fault = self._pick_fault()
        entry = StubRequest(
            time.time(), body, estimate_tokens(prompt_text), 0, schema is not None, fault
        )
        entry.peer = int(self.client_address[1])
        with self.state.lock:
            self.state.requests.append(entry)
        if fault in ("http_500", "http_429", "http_400"):
            status = int(fault.rsplit("_", 1)[1])
            self._send(status, {"error": f"injected HTTP {status}"})
            return
        if fault == "timeout":
            time.sleep(cfg.timeout_sleep_s)
            self._send(504, {"error": "injected timeout"})
            return
        if fault == "drop":
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        if fault == "html_body":
            self._send(200, None, raw=shapes.html_page(), content_type="text/html")
            return
        if fault == "deep_body":
            self._send(200, None, raw=shapes.deep_body())
            return
        rng = request_rng(cfg.seed, prompt_text)
        custom = cfg.reply(body) if cfg.reply else None
        structured = schema is not None or fmt.get("type") == "json_object"
        if custom is not None:
            content = custom
        elif structured:
            value = schema_instance(schema, rng) if schema else {"text": "ok"}
            if fault in ("out_of_range", "wrong_enum") and schema:
                value = _break(value, schema, fault)
            content = json.dumps(value)
        else:
            content = rng.choice(
                [
                    "That sounds really hard. What has been on your mind most this week?",
                    "I hear how tired you are. When did you last feel a little lighter?",
                    "Thank you for sharing that. What would you like to be different?",
                ]
            )
        if fault is not None:
            content = shapes.shape_content(fault, content, structured)
        if cfg.inline_think:
            content = f"<think>Considering the patient's state.</think>{content}"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if (
            isinstance(limit, int)
            and estimate_tokens(content) > limit
            and schema is None
            and fault != "huge_reply"
        ):
            content = content[: token_chars(limit)]
        entry.completion_tokens = estimate_tokens(content)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if cfg.reasoning:
            message["reasoning_content"] = cfg.reasoning
        if body.get("stream") or fault == "sse_body":
            self._stream(content, message)
            return
        payload = {
            "id": "stub",
            "object": "chat.completion",
            "model": body.get("model", "stub"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": entry.prompt_tokens,
                "completion_tokens": entry.completion_tokens,
                "total_tokens": entry.prompt_tokens + entry.completion_tokens,
            },
        }
        reshaped = shapes.completion_body(payload, fault)
        if fault in ("truncated_body", "trickle"):
            self._send_shaped(fault, json.dumps(reshaped).encode())
            return
        self._send(200, reshaped)

    def _stream(self, content: str, message: dict[str, Any]) -> None:
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(0, len(content), 8):
                chunk = {"choices": [{"index": 0, "delta": {"content": content[i : i + 8]}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
        except OSError:
            return


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a client that went away (killed, or past its deadline) quietly; others loudly."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("stub: client %s went away", client_address)
            return
        super().handle_error(request, client_address)


class StubServer:
    """Runs the stub on 127.0.0.1 in a background thread (use as a context manager)."""

    def __init__(self, config: StubConfig | None = None, *, port: int = 0) -> None:
        self.state = StubState(config or StubConfig())
        self.state.rng = random.Random(self.state.config.seed)
        if self.state.config.capacity:
            self.state.slots = threading.Semaphore(self.state.config.capacity)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = _Server(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (ends in /v1)."""
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{name}:{port}/v1"

    @property
    def requests(self) -> list[StubRequest]:
        """A copy of the request log."""
        with self.state.lock:
            return list(self.state.requests)

    def force(self, *faults: str) -> None:
        """Make the next requests fail with these faults, in order."""
        with self.state.lock:
            self.state.forced.extend(faults)

    def reset_log(self) -> None:
        """Forget the logged requests."""
        with self.state.lock:
            self.state.requests.clear()

    def start(self) -> StubServer:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
