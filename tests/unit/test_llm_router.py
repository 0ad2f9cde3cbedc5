"""The router: roles, structured retries with feedback, fallbacks, transport retries, usage."""

from __future__ import annotations

import threading
import time

import pytest

from theramind.config import Settings
from theramind.errors import ModelError, StructuredOutputError
from theramind.llm import ModelRouter, ScriptedBackend, TransientModelError
from theramind.llm.types import Completion, Request
from theramind.records import Perception

GOOD = {
    "emotion": "fear",
    "intensity": 0.3,
    "attitude": "positive",
    "resistance": False,
    "topic_deviation": False,
    "wants_to_end": False,
    "risk_level": "none",
}
MESSAGES = [{"role": "user", "content": "I feel tense."}]


def _router(settings: Settings, backend: ScriptedBackend) -> ModelRouter:
    settings.models["counselor"].backoff_s = 0.0
    return ModelRouter(settings, backends={"counselor": backend})


def test_each_role_gets_its_own_backend(settings: Settings) -> None:
    counselor, judge = ScriptedBackend(), ScriptedBackend()
    router = ModelRouter(settings, backends={"counselor": counselor, "judge": judge})
    router.complete("counselor", MESSAGES)
    router.complete("judge", MESSAGES)
    assert len(counselor.calls) == 1 and len(judge.calls) == 1
    assert counselor.calls[0].role == "counselor"


def test_invalid_output_is_fed_back_then_accepted(settings: Settings) -> None:
    backend = ScriptedBackend({"counselor": ["not json", {**GOOD, "attitude": "sideways"}, GOOD]})
    result = _router(settings, backend).structured("counselor", MESSAGES, Perception)
    assert result.value.emotion == "fear"
    assert result.attempts == 3 and not result.fallback
    retry_prompt = backend.calls[1].messages[-1]["content"]
    assert "invalid" in retry_prompt and "no JSON object" in retry_prompt
    assert "attitude" in backend.calls[2].messages[-1]["content"]


def test_a_retry_moves_a_fixed_seed_on(settings: Settings) -> None:
    settings.models["counselor"].seed = 7
    backend = ScriptedBackend({"counselor": ["not json", "still not json", GOOD]})
    result = _router(settings, backend).structured("counselor", MESSAGES, Perception)
    assert result.attempts == 3
    # The same seed on a deterministic model would give the same miss on every retry.
    assert [c.seed for c in backend.calls] == [7, 8, 9]
    settings.models["counselor"].seed = None
    backend = ScriptedBackend({"counselor": ["not json", GOOD]})
    _router(settings, backend).structured("counselor", MESSAGES, Perception)
    assert [c.seed for c in backend.calls] == [None, None]


def test_exhausted_retries_use_the_fallback_and_say_so(settings: Settings) -> None:
    backend = ScriptedBackend({"counselor": ["x", "y", "z"]})
    fallback = Perception(**GOOD)
    result = _router(settings, backend).structured(
        "counselor", MESSAGES, Perception, fallback=lambda: fallback
    )
    assert result.fallback and result.value == fallback
    assert len(backend.calls) == settings.limits.structured_retries + 1


def test_exhausted_retries_without_fallback_raise_typed_error(settings: Settings) -> None:
    backend = ScriptedBackend({"counselor": ["x", "y", "z"]})
    with pytest.raises(StructuredOutputError, match="Perception"):
        _router(settings, backend).structured("counselor", MESSAGES, Perception)


def test_structured_output_error_carries_the_attempts(settings: Settings) -> None:
    backend = ScriptedBackend({"counselor": ["x", "y", "still no object"]})
    with pytest.raises(StructuredOutputError) as caught:
        _router(settings, backend).structured("counselor", MESSAGES, Perception)
    err = caught.value
    assert err.attempts == settings.limits.structured_retries + 1 == len(err.errors)
    assert all("no JSON object" in e for e in err.errors)
    assert err.raw == "still no object"
    assert err.usage is not None and err.usage.completion_tokens > 0


def test_transient_faults_are_retried(settings: Settings) -> None:
    backend = ScriptedBackend(
        {"counselor": [TransientModelError("500"), TransientModelError("timeout"), "hello there"]}
    )
    router = _router(settings, backend)
    assert router.complete("counselor", MESSAGES).text == "hello there"
    assert router.meter.snapshot()["counselor"]["calls"] == 1


def test_persistent_transient_faults_raise_model_error(settings: Settings) -> None:
    settings.models["counselor"].retries = 2
    backend = ScriptedBackend({"counselor": [TransientModelError("down")] * 5})
    with pytest.raises(ModelError, match="after retries"):
        _router(settings, backend).complete("counselor", MESSAGES)
    assert len(backend.calls) == 3


def test_usage_is_counted_per_role(settings: Settings) -> None:
    router = _router(settings, ScriptedBackend({"counselor": [GOOD]}))
    router.structured("counselor", MESSAGES, Perception)
    snap = router.meter.snapshot()["counselor"]
    assert snap["calls"] == 1 and snap["prompt_tokens"] > 0 and snap["completion_tokens"] > 0


async def test_async_structured(settings: Settings) -> None:
    router = _router(settings, ScriptedBackend({"counselor": ["bad", GOOD]}))
    result = await router.astructured("counselor", MESSAGES, Perception)
    assert result.attempts == 2 and result.value.intensity == 0.3


def test_scripted_default_is_schema_valid_and_order_independent(settings: Settings) -> None:
    a = _router(settings, ScriptedBackend(seed=3)).structured("counselor", MESSAGES, Perception)
    b = _router(settings, ScriptedBackend(seed=3)).structured("counselor", MESSAGES, Perception)
    assert a.value == b.value and a.attempts == 1


class Flaky(ScriptedBackend):
    """Fails each distinct message `fails` times with a transient fault, then answers it."""

    def __init__(self, fails: int) -> None:
        super().__init__()
        self.fails = fails
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()

    def complete(self, request: Request) -> Completion:
        text = request.messages[-1]["content"]
        with self.lock:
            self.seen[text] = self.seen.get(text, 0) + 1
            n = self.seen[text]
        time.sleep(0.005)  # let the threads' attempts interleave
        if n <= self.fails:
            raise TransientModelError(f"fault {n}")
        return Completion(text=f"answer to {text}")


def test_every_call_has_its_own_retry_budget_across_threads_and_calls(settings: Settings) -> None:
    settings.models["counselor"].retries = 2
    backend = Flaky(fails=2)  # each call needs all 3 attempts
    router = _router(settings, backend)
    answers: dict[int, str] = {}

    def call(i: int) -> None:
        answers[i] = router.complete("counselor", [{"role": "user", "content": f"m{i}"}]).text

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == {i: f"answer to m{i}" for i in range(8)}
    assert backend.seen == {f"m{i}": 3 for i in range(8)}
    # One thread, one call after another: an exhausted call does not shorten the next one's.
    backend.fails = 5
    with pytest.raises(ModelError, match="after retries"):
        router.complete("counselor", [{"role": "user", "content": "never"}])
    assert backend.seen["never"] == 3
    backend.fails = 2
    late = router.complete("counselor", [{"role": "user", "content": "late"}])
    assert late.text == "answer to late"
    # A spec changed in place takes effect on the next call.
    settings.models["counselor"].retries = 0
    with pytest.raises(ModelError, match="after retries"):
        router.complete("counselor", [{"role": "user", "content": "once"}])
    assert backend.seen["once"] == 1
