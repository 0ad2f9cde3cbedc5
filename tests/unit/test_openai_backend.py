"""The OpenAI-compatible backend against a local stub server that speaks the protocol."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from theramind.config import Settings
from theramind.errors import ModelError, ModelUnavailableError
from theramind.llm import ModelRouter
from theramind.records import Perception
from theramind.testing.stub_server import StubConfig, StubServer

MESSAGES = [{"role": "user", "content": "I feel tense before work."}]


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(StubConfig(seed=1)) as server:
        yield server


def _router(settings: Settings, url: str, **spec: object) -> ModelRouter:
    settings.models["counselor"] = settings.models["counselor"].model_copy(
        update={
            "backend": "openai",
            "base_url": url,
            "model": "stub-model",
            "backoff_s": 0.0,
            "timeout_s": 2.0,
            "structured_output": "json_schema",
            **spec,
        }
    )
    return ModelRouter(settings)


def test_structured_calls_send_json_schema_and_max_completion_tokens(
    settings: Settings, stub: StubServer
) -> None:
    router = _router(settings, stub.base_url)
    result = router.structured("counselor", MESSAGES, Perception, max_tokens=77)
    assert 0.0 <= result.value.intensity <= 1.0
    body = stub.requests[-1].body
    assert body["response_format"]["type"] == "json_schema"
    assert (
        body["response_format"]["json_schema"]["schema"]["properties"]["intensity"]["maximum"] == 1
    )
    assert body["max_completion_tokens"] == 77 and "max_tokens" not in body
    assert body["model"] == "stub-model"


def test_max_tokens_field_is_configurable_for_servers_that_ignore_the_new_one(
    settings: Settings, stub: StubServer
) -> None:
    router = _router(settings, stub.base_url, max_tokens_field="max_tokens")
    router.complete("counselor", MESSAGES, max_tokens=12)
    body = stub.requests[-1].body
    assert body["max_tokens"] == 12 and "max_completion_tokens" not in body


def test_reasoning_content_is_kept_apart(settings: Settings) -> None:
    with StubServer(StubConfig(reasoning="The patient seems anxious.")) as server:
        completion = _router(settings, server.base_url).complete("counselor", MESSAGES)
    assert completion.reasoning == "The patient seems anxious."
    assert "anxious" not in completion.text


def test_inline_think_is_stripped_from_content(settings: Settings) -> None:
    with StubServer(StubConfig(inline_think=True)) as server:
        router = _router(settings, server.base_url)
        completion = router.complete("counselor", MESSAGES)
        structured = router.structured("counselor", MESSAGES, Perception)
    assert "<think>" not in completion.text and completion.reasoning
    assert structured.reasoning and structured.attempts == 1


@pytest.mark.parametrize("fault", ["http_500", "drop", "timeout"])
def test_transport_faults_are_retried(settings: Settings, stub: StubServer, fault: str) -> None:
    stub.state.config.timeout_sleep_s = 3.0
    stub.force(fault)
    router = _router(settings, stub.base_url, timeout_s=1.0)
    assert router.complete("counselor", MESSAGES).text
    assert len(stub.requests) == 2


@pytest.mark.parametrize(
    "fault", ["malformed_json", "unfenced_prose", "out_of_range", "wrong_enum"]
)
def test_bad_structured_output_is_repaired_or_retried(
    settings: Settings, stub: StubServer, fault: str
) -> None:
    stub.force(fault)
    result = _router(settings, stub.base_url).structured("counselor", MESSAGES, Perception)
    assert not result.fallback
    assert 0.0 <= result.value.intensity <= 1.0
    assert result.attempts <= 2


def test_servers_without_json_schema_use_prompted_json(settings: Settings) -> None:
    good = Perception(
        emotion="fear",
        intensity=0.4,
        attitude="negative",
        resistance=False,
        topic_deviation=False,
        wants_to_end=False,
        risk_level="none",
    ).model_dump_json()

    def answer(body: dict) -> str | None:
        system = body["messages"][0]["content"]
        return f"Here you go: {good}" if "Reply with one JSON object only" in system else None

    with StubServer(StubConfig(reject_json_schema=True, reply=answer)) as server:
        strict = _router(settings, server.base_url, retries=0)
        with pytest.raises(ModelError, match="500"):
            strict.structured("counselor", MESSAGES, Perception)
        router = _router(settings, server.base_url, structured_output="prompt", retries=0)
        result = router.structured("counselor", MESSAGES, Perception)
        assert "response_format" not in server.requests[-1].body
    assert result.value.emotion == "fear" and result.attempts == 1


def test_persistent_500s_raise_a_model_error(settings: Settings, stub: StubServer) -> None:
    stub.force(*["http_500"] * 10)
    with pytest.raises(ModelError):
        _router(settings, stub.base_url, retries=2).complete("counselor", MESSAGES)
    assert len(stub.requests) == 3


def test_unreachable_endpoint_names_the_url_and_what_to_run(settings: Settings) -> None:
    router = _router(settings, "http://127.0.0.1:9/v1")
    with pytest.raises(ModelUnavailableError, match=r"127\.0\.0\.1:9.*vllm serve"):
        router.check()


def test_streaming_yields_visible_chunks(settings: Settings, stub: StubServer) -> None:
    chunks = list(_router(settings, stub.base_url).stream("counselor", MESSAGES))
    assert len(chunks) > 1 and "".join(chunks).strip()


async def test_async_client(settings: Settings, stub: StubServer) -> None:
    result = await _router(settings, stub.base_url).astructured("counselor", MESSAGES, Perception)
    assert result.value.risk_level in ("none", "low", "moderate", "high")
