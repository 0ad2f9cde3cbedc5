"""Several OpenAI-compatible endpoints behind one role: least-loaded choice, failing ones rested.

A role's `base_url` may name a list of servers (replicas of one model). Each call takes the
endpoint with the fewest calls in flight (ties: the fewest calls so far, then the order of the
list); an endpoint whose call fails with a transient fault (connection refused, timeout, HTTP
5xx or 429, a garbled body) is taken out for `endpoint_retry_s` seconds and then tried again.
When every endpoint is out, the one that comes back first is tried anyway: a role is never
left without a server to ask. Usage (calls, failures, tokens, latency) is counted per
endpoint. Load is counted per process; the keep-alive HTTP clients are shared by every
backend of the process that talks to the same server.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from theramind.llm.types import UsageTotals

log = logging.getLogger(__name__)

ClientKey = tuple[str, tuple[tuple[str, str], ...]]


CLIENT_CALLS = 4
"""Calls in flight that one connection pool takes before the endpoint opens another pool."""
MAX_CLIENTS = 16
"""Connection pools one endpoint opens at most; past that, calls share the least busy one."""
CLIENT_LIMITS = httpx.Limits(
    max_connections=None, max_keepalive_connections=64, keepalive_expiry=30
)
"""Idle connections one pool keeps open (httpx keeps 20 by default: a process serving more
sessions than that opened a new TCP connection for most calls, 842 for 1,139 calls at 32)."""
DEFAULT_TIMEOUT = httpx.Timeout(5.0)
"""Per-operation timeout of a call that names none (httpx's own default)."""
USER_AGENT = "theramind"

Hook = Callable[[Any], None]


def _proxy(url: httpx.URL) -> httpx.Proxy | None:
    """The proxy the environment names for `url` (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), if any."""
    if urllib.request.proxy_bypass(url.host):
        return None
    proxies = urllib.request.getproxies()
    found = proxies.get(url.scheme) or proxies.get("all")
    return httpx.Proxy(found) if found else None


@dataclass(eq=False)
class _Shard:
    transport: httpx.HTTPTransport
    in_flight: int = 0


class EndpointClient:
    """One endpoint's keep-alive HTTP connections, spread over a few connection pools.

    Calls go straight to `httpx.HTTPTransport` (httpx's connection pool, with its timeouts and
    its errors), not through `httpx.Client`: a client's per-call work (URL merging, cookie
    jars, auth and redirect steps) cost about 1 ms of CPU per call, about as much as the
    transport itself, and an OpenAI-compatible server needs none of it. What this endpoint
    does need is kept: its headers on every request, a timeout per call, the environment's
    proxy, and `event_hooks` ("request", "response") that apply to every pool, also to hooks
    added later.

    One pool shared by every session is slow under concurrency: whenever a request starts or
    ends, httpcore's pool checks each idle connection against a count of all of them (work
    quadratic in the pool's size). At 32 sessions at once that took 3.6 ms of CPU per turn,
    about a third of all the HTTP work. Here each call takes the pool with the fewest calls
    in flight, and another pool is opened only when every one has `CLIENT_CALLS` in flight
    (up to `MAX_CLIENTS`): each pool stays a few connections small, a lone session uses one
    pool and one connection, and connections are still kept alive and reused.
    """

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        """Serve `base_url` with `headers` on every request; pools are opened when needed."""
        self.base_url = base_url
        self.headers = dict(headers)
        self.event_hooks: dict[str, list[Hook]] = {"request": [], "response": []}
        self._base = httpx.URL(base_url)
        self._request_headers = httpx.Headers({"Accept": "*/*", "User-Agent": USER_AGENT})
        self._request_headers.update(self.headers)
        self._proxy = _proxy(self._base)
        self._urls: dict[str, httpx.URL] = {}
        self._lock = threading.Lock()
        self._shards: list[_Shard] = []
        self._closed = False

    @property
    def is_closed(self) -> bool:
        """Whether `close` was called."""
        return self._closed

    def _open(self) -> httpx.HTTPTransport:
        return httpx.HTTPTransport(limits=CLIENT_LIMITS, proxy=self._proxy)

    def _take(self) -> _Shard:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the HTTP client of {self.base_url} is closed")
            shard = min(self._shards, key=lambda s: s.in_flight, default=None)
            if shard is None or (
                shard.in_flight >= CLIENT_CALLS and len(self._shards) < MAX_CLIENTS
            ):
                shard = _Shard(self._open())
                self._shards.append(shard)
            shard.in_flight += 1
            return shard

    def _give(self, shard: _Shard) -> None:
        with self._lock:
            shard.in_flight -= 1

    def url(self, path: str) -> httpx.URL:
        """The absolute URL of `path` under the base URL ('/models' -> '<base>/models')."""
        found = self._urls.get(path)
        if found is None:
            found = self._base.copy_with(
                raw_path=self._base.raw_path.rstrip(b"/") + b"/" + path.lstrip("/").encode()
            )
            self._urls[path] = found
        return found

    def _send(
        self,
        shard: _Shard,
        method: str,
        path: str,
        *,
        content: bytes | None,
        timeout: httpx.Timeout | float | None,
    ) -> httpx.Response:
        if not isinstance(timeout, httpx.Timeout):
            timeout = DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout)
        request = httpx.Request(
            method,
            self.url(path),
            headers=self._request_headers,
            content=content,
            extensions={"timeout": timeout.as_dict()},
        )
        for hook in list(self.event_hooks["request"]):
            hook(request)
        response = shard.transport.handle_request(request)
        response.request = request
        try:
            for hook in list(self.event_hooks["response"]):
                hook(response)
        except BaseException:
            response.close()
            raise
        return response

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> Iterator[httpx.Response]:
        """Send a request; the response's body is read from the stream inside the block."""
        shard = self._take()
        try:
            response = self._send(shard, method, path, content=content, timeout=timeout)
            try:
                yield response
            finally:
                response.close()
        finally:
            self._give(shard)

    def get(self, path: str, *, timeout: httpx.Timeout | float | None = None) -> httpx.Response:
        """GET `path` and read the whole body."""
        with self.stream("GET", path, timeout=timeout) as response:
            response.read()
        return response

    def client_count(self) -> int:
        """How many connection pools are open."""
        with self._lock:
            return len(self._shards)

    def close(self) -> None:
        """Close every pool; later calls raise."""
        with self._lock:
            self._closed = True
            shards, self._shards = self._shards, []
        for shard in shards:
            shard.transport.close()


class ClientPool:
    """One `EndpointClient` per endpoint (base URL and headers), shared by backends.

    Backends of different models on one server share its connections; the client is closed
    when the last backend using it closes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[ClientKey, EndpointClient] = {}
        self._users: dict[ClientKey, int] = {}

    @staticmethod
    def _key(base_url: str, headers: dict[str, str]) -> ClientKey:
        return base_url, tuple(sorted(headers.items()))

    def acquire(self, base_url: str, headers: dict[str, str]) -> EndpointClient:
        """Return the endpoint's client (creating it), counting one more user."""
        key = self._key(base_url, headers)
        with self._lock:
            client = self._clients.get(key)
            if client is None or client.is_closed:
                client = EndpointClient(base_url, headers)
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


CLIENTS = ClientPool()
"""The process's keep-alive clients, one per endpoint."""


class EndpointUsage(UsageTotals):
    """Running totals of one endpoint."""


@dataclass
class Endpoint:
    """One server of a role: its client, its load and its health."""

    url: str
    client: EndpointClient
    index: int
    in_flight: int = 0
    out_until: float = 0.0
    usage: EndpointUsage = field(default_factory=EndpointUsage)


class EndpointPool:
    """Chooses the least-loaded healthy endpoint for each call and keeps each one's usage."""

    def __init__(
        self,
        urls: list[str],
        headers: dict[str, str],
        *,
        retry_after_s: float = 30.0,
        clients: ClientPool = CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("an endpoint pool needs at least one URL")
        self.retry_after_s = retry_after_s
        self._headers = headers
        self._clients = clients
        self._clock = clock
        self._lock = threading.Lock()
        self.endpoints = [
            Endpoint(url=u, client=clients.acquire(u, headers), index=i) for i, u in enumerate(urls)
        ]
        self._closed = False

    @property
    def urls(self) -> list[str]:
        """The endpoints' base URLs, in the configured order."""
        return [e.url for e in self.endpoints]

    def is_out(self, endpoint: Endpoint) -> bool:
        """Whether an endpoint is resting after a failure."""
        return endpoint.out_until > self._clock()

    def acquire(self) -> Endpoint:
        """Take the endpoint for the next call (counted in flight until `release`)."""
        with self._lock:
            now = self._clock()
            ready = [e for e in self.endpoints if e.out_until <= now]
            if ready:
                chosen = min(ready, key=lambda e: (e.in_flight, e.usage.calls, e.index))
            else:  # all resting: ask the one that comes back first rather than nobody
                chosen = min(self.endpoints, key=lambda e: (e.out_until, e.index))
            chosen.in_flight += 1
            return chosen

    def release(
        self,
        endpoint: Endpoint,
        *,
        failed: bool,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        latency_s: float = 0.0,
        reason: str = "",
    ) -> None:
        """Count a finished call; a failed one takes the endpoint out for a while."""
        with self._lock:
            endpoint.in_flight = max(0, endpoint.in_flight - 1)
            usage = endpoint.usage
            usage.calls += 1
            usage.latency_s += latency_s
            if failed:
                usage.failures += 1
                endpoint.out_until = self._clock() + self.retry_after_s
            else:
                usage.prompt_tokens += prompt_tokens
                usage.completion_tokens += completion_tokens
                came_back = endpoint.out_until > 0.0
                endpoint.out_until = 0.0
        if len(self.endpoints) > 1:
            if failed:
                log.warning(
                    "endpoint %s failed (%s); taken out for %.0fs",
                    endpoint.url,
                    reason,
                    self.retry_after_s,
                )
            elif came_back:
                log.info("endpoint %s answers again", endpoint.url)

    @contextmanager
    def lease(self, faults: tuple[type[BaseException], ...] = (Exception,)) -> Iterator[Endpoint]:
        """Hold an endpoint for one call that counts no tokens (a stream, a check).

        An exception of a type in `faults` escaping the block counts as the endpoint's failure.
        """
        endpoint = self.acquire()
        started = time.perf_counter()
        failed, reason = False, ""
        try:
            yield endpoint
        except faults as exc:
            failed, reason = True, f"{type(exc).__name__}: {exc}"
            raise
        finally:
            elapsed = time.perf_counter() - started
            self.release(endpoint, failed=failed, latency_s=elapsed, reason=reason)

    def mark_out(self, url: str) -> None:
        """Take an endpoint out until its retry time (a failed health check)."""
        with self._lock:
            for e in self.endpoints:
                if e.url == url:
                    e.out_until = self._clock() + self.retry_after_s

    def usage(self) -> dict[str, EndpointUsage]:
        """Return a copy of each endpoint's totals, by URL."""
        with self._lock:
            return {e.url: EndpointUsage(**vars(e.usage)) for e in self.endpoints}

    def close(self) -> None:
        """Give every endpoint's pooled client back."""
        if self._closed:
            return
        self._closed = True
        for e in self.endpoints:
            self._clients.release(e.url, self._headers)


def merge_usage(
    into: dict[str, EndpointUsage], more: dict[str, EndpointUsage]
) -> dict[str, EndpointUsage]:
    """Add per-endpoint totals to others (in place); return the result."""
    for url, usage in more.items():
        into.setdefault(url, EndpointUsage()).add(usage)
    return into
