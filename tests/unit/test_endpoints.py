"""Several endpoints per role: least-loaded choice, failing ones rested and retried, usage kept."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from theramind import load_config
from theramind.config import ModelSpec, Settings
from theramind.errors import ConfigError, ModelUnavailableError
from theramind.llm import ModelRouter
from theramind.llm.endpoints import ClientPool, EndpointPool
from theramind.testing.stub_server import StubConfig, StubServer

MESSAGES = [{"role": "user", "content": "I keep replaying the argument with my sister."}]
A, B, C = "http://a.test:1/v1", "http://b.test:1/v1", "http://c.test:1/v1"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pool(*urls: str, clock: Clock | None = None, retry_after_s: float = 30.0) -> EndpointPool:
    return EndpointPool(
        list(urls), {}, retry_after_s=retry_after_s, clients=ClientPool(), clock=clock or Clock()
    )


def test_each_call_goes_to_the_endpoint_with_the_fewest_calls_in_flight() -> None:
    p = pool(A, B, C)
    first, second, third = p.acquire(), p.acquire(), p.acquire()
    assert [first.url, second.url, third.url] == [A, B, C]
    p.release(second, failed=False)
    assert p.acquire().url == B, "B is the only endpoint with nothing in flight"
    # Equal load: the one that served fewer calls so far goes first.
    p.release(first, failed=False)
    p.release(third, failed=False)
    loads = [e.in_flight for e in p.endpoints]
    assert loads == [0, 1, 0]
    assert p.acquire().url == A  # A and C both served one call; A comes first in the list
    p.close()


def test_a_failing_endpoint_is_taken_out_and_tried_again_later() -> None:
    clock = Clock()
    p = pool(A, B, clock=clock, retry_after_s=30.0)
    a = p.acquire()
    assert a.url == A
    p.release(a, failed=True, reason="HTTP 503")
    chosen = []
    for _ in range(4):
        e = p.acquire()
        chosen.append(e.url)
        p.release(e, failed=False)
    assert chosen == [B, B, B, B], "a resting endpoint gets no calls while another is up"
    clock.now += 31.0
    e = p.acquire()
    assert e.url == A, "after its rest the endpoint is asked again (it has served fewer calls)"
    p.release(e, failed=False)
    assert not p.is_out(p.endpoints[0])
    p.close()


def test_when_every_endpoint_is_out_the_first_to_come_back_is_tried() -> None:
    clock = Clock()
    p = pool(A, B, clock=clock, retry_after_s=10.0)
    a, b = p.acquire(), p.acquire()
    p.release(a, failed=False)
    clock.now += 1.0
    p.release(b, failed=True)  # B out until 111
    a = p.acquire()
    assert a.url == A
    clock.now += 2.0
    p.release(a, failed=True)  # A out until 113
    assert all(p.is_out(e) for e in p.endpoints)
    assert p.acquire().url == B, "B's rest ends first"
    p.close()


def test_usage_is_counted_per_endpoint() -> None:
    p = pool(A, B)
    a, b = p.acquire(), p.acquire()
    p.release(a, failed=False, prompt_tokens=100, completion_tokens=20, latency_s=0.5)
    p.release(b, failed=True, latency_s=2.0)
    a = p.acquire()
    p.release(a, failed=False, prompt_tokens=50, completion_tokens=5, latency_s=0.25)
    usage = p.usage()
    assert vars(usage[A]) == {
        "calls": 2,
        "failures": 0,
        "prompt_tokens": 150,
        "completion_tokens": 25,
        "latency_s": 0.75,
    }
    assert usage[B].calls == 1 and usage[B].failures == 1 and usage[B].prompt_tokens == 0
    p.close()


def test_endpoints_share_one_keep_alive_client_per_url_and_close_with_the_last_user() -> None:
    clients = ClientPool()
    one = EndpointPool([A, B], {}, clients=clients)
    two = EndpointPool([B, C], {}, clients=clients)
    assert clients.open_count() == 3
    assert one.endpoints[1].client is two.endpoints[0].client
    one.close()
    assert clients.open_count() == 2
    two.close()
    assert clients.open_count() == 0


# -- configuration ------------------------------------------------------------------------------


def test_a_role_may_name_a_list_of_servers() -> None:
    spec = ModelSpec.model_validate(
        {"backend": "openai", "model": "m", "base_url": [A, B + "/"], "endpoint_retry_s": 5}
    )
    assert spec.base_urls == [A, B]
    assert ModelSpec.model_validate({"backend": "openai", "base_url": A}).base_urls == [A]


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ([], "empty list"),
        ([A, A + "/"], "twice"),
        (["gpu-1:8000/v1"], "not an http"),
    ],
)
def test_bad_server_lists_are_refused_with_what_to_fix(base_url: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, models={"counselor": {"backend": "openai", "base_url": base_url}})


def test_a_server_list_needs_the_openai_backend() -> None:
    with pytest.raises(ConfigError, match="needs backend 'openai'"):
        load_config(None, models={"counselor": {"backend": "scripted", "base_url": [A, B]}})


def test_the_environment_may_name_several_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THERAMIND_BASE_URL", f"{A}, {B}")
    settings = load_config(None)
    assert settings.models["counselor"].base_urls == [A, B]


# -- through the OpenAI-compatible backend --------------------------------------------------------


@pytest.fixture
def stubs() -> Iterator[tuple[StubServer, StubServer]]:
    with StubServer(StubConfig(seed=1)) as one, StubServer(StubConfig(seed=1)) as two:
        yield one, two


def _router(settings: Settings, urls: list[str], **spec: object) -> ModelRouter:
    settings.models["counselor"] = ModelSpec.model_validate(
        {
            "backend": "openai",
            "base_url": urls,
            "model": "stub-model",
            "backoff_s": 0.0,
            "timeout_s": 5.0,
            "structured_output": "json_schema",
            **spec,
        }
    )
    return ModelRouter(settings)


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_calls_spread_over_both_servers_under_load(
    settings: Settings, stubs: tuple[StubServer, StubServer]
) -> None:
    one, two = stubs
    one.state.config.latency_s = two.state.config.latency_s = 0.1
    router = _router(settings, [one.base_url, two.base_url])
    threads = [
        threading.Thread(target=router.complete, args=("counselor", MESSAGES)) for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(one.requests) == len(two.requests) == 3
    usage = router.endpoint_usage()
    assert {u: c["calls"] for u, c in usage.items()} == {one.base_url: 3, two.base_url: 3}
    assert all(c["prompt_tokens"] > 0 and c["failures"] == 0 for c in usage.values())
    router.close()


def test_many_sessions_at_once_reuse_their_connections(settings: Settings) -> None:
    with StubServer(StubConfig(latency_s=0.05)) as stub:
        router = _router(settings, [stub.base_url])
        barrier = threading.Barrier(30)

        def calls() -> None:
            for _ in range(3):
                barrier.wait()  # 30 calls in flight together, three times over
                router.complete("counselor", MESSAGES)

        threads = [threading.Thread(target=calls) for _ in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        router.close()
        assert len(stub.requests) == 90
        # Each connection is one client port: kept open between calls, not reopened.
        assert len({r.peer for r in stub.requests}) <= 32


def test_a_server_error_moves_the_call_to_the_other_server(
    settings: Settings, stubs: tuple[StubServer, StubServer]
) -> None:
    one, two = stubs
    one.force("http_500")
    router = _router(settings, [one.base_url, two.base_url], retries=1)
    first = router.complete("counselor", MESSAGES)
    assert first.text, "the retry went to the healthy server"
    assert len(one.requests) == 1 and len(two.requests) == 1
    for _ in range(3):
        router.complete("counselor", MESSAGES)
    assert len(one.requests) == 1, "the failing server rests; the others take the calls"
    usage = router.endpoint_usage()
    assert usage[one.base_url]["failures"] == 1 and usage[two.base_url]["calls"] == 4
    router.close()


def test_a_dead_server_is_skipped_at_the_check_and_no_server_is_an_error(
    settings: Settings, stubs: tuple[StubServer, StubServer]
) -> None:
    one, _ = stubs
    dead = _dead_url()
    router = _router(settings, [dead, one.base_url], retries=0)
    router.check()  # one server answers: enough
    for _ in range(3):
        router.complete("counselor", MESSAGES)
    assert len(one.requests) == 3
    assert router.endpoint_usage().get(dead, {}).get("calls", 0) == 0
    router.close()
    other = _dead_url()
    router = _router(settings, [dead, other], retries=0)
    with pytest.raises(ModelUnavailableError, match="None of the model servers") as info:
        router.check()
    assert dead in str(info.value) and other in str(info.value)
    router.close()


async def test_async_calls_skip_a_dead_server_too(
    settings: Settings, stubs: tuple[StubServer, StubServer]
) -> None:
    one, _ = stubs
    dead = _dead_url()
    router = _router(settings, [dead, one.base_url], retries=1)
    first = await router.acomplete("counselor", MESSAGES)
    second = await router.acomplete("counselor", MESSAGES)
    assert first.text and second.text
    usage = router.endpoint_usage()
    assert usage[dead] == {
        "calls": 1,
        "failures": 1,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "latency_s": usage[dead]["latency_s"],
    }
    assert usage[one.base_url]["calls"] == 2 and len(one.requests) == 2
    router.close()
