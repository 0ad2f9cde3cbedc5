"""One endpoint's connections spread over a few HTTP clients, opened only under concurrency."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from theramind.llm.endpoints import CLIENT_CALLS, MAX_CLIENTS, EndpointClient


class HeldServer:
    """A loopback HTTP server whose `/hold` answers wait until the test lets them go."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arrived = threading.Semaphore(0)
        self.headers_seen: list[str] = []
        self.requests_seen: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.headers_seen.append(self.headers.get("x-role", ""))
                outer.requests_seen.append((self.path, dict(self.headers.items())))
                if self.path.endswith("/hold"):
                    outer.arrived.release()
                    outer.release.wait(10)
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[HeldServer]:
    s = HeldServer()
    yield s
    s.close()


def hold(client: EndpointClient, server: HeldServer, n: int) -> list[threading.Thread]:
    """Start `n` calls that stay in flight until `server.release` is set."""
    threads = [threading.Thread(target=client.get, args=("/hold",)) for _ in range(n)]
    for t in threads:
        t.start()
    for _ in range(n):
        assert server.arrived.acquire(timeout=10), "a held call never reached the server"
    return threads


def test_a_lone_caller_reuses_one_client_and_one_connection(server: HeldServer) -> None:
    client = EndpointClient(server.url, {"x-role": "counselor"})
    ports = set()

    def port(response: httpx.Response) -> None:
        stream = response.extensions["network_stream"]
        ports.add(stream.get_extra_info("client_addr")[1])

    client.event_hooks["response"].append(port)
    for _ in range(5):
        assert client.get("/ping").json() == {"ok": True}
    with client.stream("GET", "/ping") as response:
        assert response.read() == b'{"ok": true}'
    assert client.client_count() == 1
    assert len(ports) == 1, "calls one after another share one kept-alive connection"
    assert server.headers_seen == ["counselor"] * 6, "the endpoint's headers go with every call"
    client.close()


def test_another_client_opens_only_when_each_one_has_its_share_in_flight(
    server: HeldServer,
) -> None:
    client = EndpointClient(server.url, {})
    held = hold(client, server, CLIENT_CALLS)
    assert client.client_count() == 1, f"{CLIENT_CALLS} calls in flight fit in one client"
    held += hold(client, server, 1)
    assert client.client_count() == 2
    held += hold(client, server, CLIENT_CALLS - 1)
    assert client.client_count() == 2, "the new client takes calls until it too is full"
    server.release.set()
    for t in held:
        t.join(10)
    server.release.clear()
    # Now idle: new calls go to the existing clients; none is opened.
    for _ in range(3):
        client.get("/ping")
    assert client.client_count() == 2
    client.close()


def test_clients_stop_at_the_limit_and_share_the_load(
    server: HeldServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("theramind.llm.endpoints.CLIENT_CALLS", 1)
    monkeypatch.setattr("theramind.llm.endpoints.MAX_CLIENTS", 2)
    client = EndpointClient(server.url, {})
    held = hold(client, server, 5)
    assert client.client_count() == 2
    server.release.set()
    for t in held:
        t.join(10)
    assert all(not t.is_alive() for t in held), "calls past the limit still complete"
    client.close()
    assert MAX_CLIENTS > 2  # the real limit is above the patched one


def test_hooks_added_later_reach_every_client_and_close_closes_all(server: HeldServer) -> None:
    client = EndpointClient(server.url, {})
    held = hold(client, server, CLIENT_CALLS + 1)
    assert client.client_count() == 2
    seen: list[str] = []
    client.event_hooks["request"].append(lambda request: seen.append(request.url.path))
    server.release.set()
    for t in held:
        t.join(10)
    server.release.clear()
    # Keep both clients busy again so that calls land on each of them.
    held = hold(client, server, CLIENT_CALLS + 1)
    server.release.set()
    for t in held:
        t.join(10)
    assert seen == ["/v1/hold"] * (CLIENT_CALLS + 1)
    client.close()
    assert client.is_closed and client.client_count() == 0
    with pytest.raises(RuntimeError, match="closed"):
        client.get("/ping")


def test_a_finished_streamed_response_is_freed_at_once_not_by_the_collector(
    server: HeldServer,
) -> None:
    client = EndpointClient(server.url, {})
    client.get("/ping")  # open the connection first
    gc.collect()
    gc.disable()
    try:
        with client.stream("GET", "/ping") as response:
            assert response.read() == b'{"ok": true}'
        ref = weakref.ref(response)
        del response
        assert ref() is None, "the response and its stream hold each other in a cycle"
    finally:
        gc.enable()
        client.close()


@pytest.mark.parametrize("base_tail", ["", "/"])
@pytest.mark.parametrize("path", ["/models", "models"])
def test_paths_join_under_the_base_url_with_the_endpoint_headers(
    server: HeldServer, base_tail: str, path: str
) -> None:
    client = EndpointClient(server.url + base_tail, {"x-role": "counselor"})
    try:
        response = client.get(path)
        assert response.status_code == 200 and response.json() == {"ok": True}
        assert str(response.request.url) == server.url + "/models"
        seen_path, headers = server.requests_seen[-1]
        assert seen_path == "/v1/models"
        assert headers["x-role"] == "counselor"
        assert headers["User-Agent"] == "theramind"
    finally:
        client.close()


def test_a_per_call_timeout_raises_httpx_timeout(server: HeldServer) -> None:
    client = EndpointClient(server.url, {})
    try:
        with pytest.raises(httpx.ReadTimeout):
            client.get("/hold", timeout=0.2)
        assert client.client_count() == 1
    finally:
        client.close()


def test_a_failing_response_hook_propagates_and_the_call_is_given_back(
    server: HeldServer,
) -> None:
    client = EndpointClient(server.url, {})

    def refuse(response: httpx.Response) -> None:
        raise ValueError(f"refused {response.status_code}")

    client.event_hooks["response"].append(refuse)
    try:
        with pytest.raises(ValueError, match="refused 200"):
            client.get("/ping")
        client.event_hooks["response"].clear()
        assert client.get("/ping").status_code == 200
        assert client.client_count() == 1  # the failed call did not keep its pool busy
    finally:
        client.close()


def test_the_environment_proxy_is_used_unless_the_host_is_exempt(
    server: HeldServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    proxy = server.url.removesuffix("/v1")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    client = EndpointClient("http://model.invalid/v1", {})
    try:
        assert client.get("/models").status_code == 200
        assert server.requests_seen[-1][0] == "http://model.invalid/v1/models"
    finally:
        client.close()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = EndpointClient(server.url, {})
    try:
        assert direct.get("/models").status_code == 200
        assert server.requests_seen[-1][0] == "/v1/models"
    finally:
        direct.close()
