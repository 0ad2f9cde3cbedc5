"""Two sessions through the OpenAI-compatible backend against a real vLLM server (CPU build)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from vllm_server import VLLMServer, start_vllm_server, vllm_unavailable_reason

from theramind import TheraMind, load_config
from theramind.llm.backends.openai import OpenAIBackend
from theramind.memory import HashingEmbedder, build_memory
from theramind.services import build_services

pytestmark = pytest.mark.integration

MAX_TOKENS = 160


@pytest.fixture(scope="module")
def vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    reason = vllm_unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"vLLM is not prepared in CI: {reason}")
        pytest.skip(reason)
    log = tmp_path_factory.mktemp("vllm") / "vllm.log"
    with start_vllm_server(log_path=log, timeout_s=420) as server:
        yield server


def test_two_sessions_on_a_real_vllm_server(vllm: VLLMServer, tmp_path: Path) -> None:
    spec = {
        "backend": "openai",
        "base_url": vllm.base_url,
        "model": vllm.model,
        "structured_output": "json_schema",
        "max_tokens_field": "max_completion_tokens",
        "max_tokens": MAX_TOKENS,
        "temperature": 0.7,
        "timeout_s": 180,
    }
    settings = load_config(
        None,
        models={"counselor": spec, "patient": "scripted", "judge": "scripted"},
        storage={"home": str(tmp_path)},
        memory={"backend": "inmemory"},
    )
    services = build_services(settings, memory=build_memory(settings, embedder=HashingEmbedder()))
    backend = services.router.backend("counselor")
    assert isinstance(backend, OpenAIBackend)
    exchanges: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def on_response(response: httpx.Response) -> None:
        response.read()
        request = response.request
        if request.url.path.endswith("/chat/completions"):
            exchanges.append((_json(request.content), response.json()))

    for endpoint in backend.endpoints.endpoints:
        endpoint.client.event_hooks["response"].append(on_response)
    app = TheraMind(services)
    profile = {
        "patient_id": "v1",
        "pseudonym": "Kim",
        "presenting_problem": "Can't sleep, worried about losing my job.",
        "category": "stress",
    }
    try:
        for _ in range(2):
            session = app.start_session("v1", profile=profile)
            for text in [
                "I lie awake every night thinking about work.",
                "That's all for today, bye.",
            ]:
                if session.status != "open":
                    break
                assert session.respond(text).reply.strip()
            outcome = session.end()
            assert outcome.decision.therapies
        structured = [(req, resp) for req, resp in exchanges if "response_format" in req]
        plain = [(req, resp) for req, resp in exchanges if "response_format" not in req]
        assert structured and plain
        for request, response in exchanges:
            assert "max_completion_tokens" in request and "max_tokens" not in request
            assert response["usage"]["completion_tokens"] <= request["max_completion_tokens"]
        for request, _ in structured:
            assert request["response_format"]["type"] == "json_schema"
        turns = [t for n in (1, 2) for t in app.session("v1", n).turns]
        outcomes = app.history("v1")
        validated = sum(
            1 for t in turns for c in t.calls if c.agent != "responder" and not c.fallback
        )
        assert validated >= len(turns), "structured calls did not validate"
        strategist = [c for o in outcomes for c in o.calls if c.agent.startswith("strategist")]
        assert all(not c.fallback for c in strategist), strategist
        assert app.session("v1", 2).plan.therapies == outcomes[0].decision.therapies
    finally:
        app.close()


def _json(content: bytes) -> dict[str, Any]:
    import json

    return json.loads(content) if content else {}
