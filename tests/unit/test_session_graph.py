"""The intra-session loop: calls per turn, node order, strategies, endings, crisis."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from conftest import AppFactory
from scripted import Counselor, scripted_backend
from theramind.llm import Request, ScriptedBackend
from theramind.memory import HashingEmbedder, build_memory


def _turn_requests(backend: ScriptedBackend, before: int) -> list[Request]:
    return backend.calls[before:]


def test_a_turn_makes_at_most_three_calls_in_sequence(make_app: AppFactory, profile: dict) -> None:
    backend = scripted_backend()
    app = make_app(backend)
    session = app.start_session("p1", profile=profile)
    for text in ["I can't sleep before exams.", "My mother keeps calling.", "I feel stuck."]:
        before = len(backend.calls)
        result = session.respond(text)
        calls = _turn_requests(backend, before)
        assert len(calls) <= 3
        assert [c.schema_name for c in calls] == ["Perception", "StrategyChoice", "output"]
        assert len(result.record.calls) == len(calls)
        assert result.record.prompt_tokens > 0


def test_a_turns_nodes_run_on_the_callers_thread_recall_first(
    make_app: AppFactory, settings: Any, profile: dict
) -> None:
    """No node of a turn waits on a thread of its own: recall, then the diagnostician's call."""
    seen: list[tuple[str, int]] = []
    counselor = Counselor()

    def handler(request: Request) -> Any:
        seen.append((request.schema_name or "", threading.get_ident()))
        return counselor(request)

    class WatchedMemory:
        def __init__(self) -> None:
            self.inner = build_memory(settings, embedder=HashingEmbedder())

        def recall(self, *args: Any, **kwargs: Any) -> list[Any]:
            seen.append(("recall", threading.get_ident()))
            return self.inner.recall(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    app = make_app(ScriptedBackend(handler=handler), memory=WatchedMemory())
    session = app.start_session("p1", profile=profile)
    seen.clear()
    session.respond("Work has been overwhelming.")
    assert [name for name, _ in seen][:2] == ["recall", "Perception"]
    assert {ident for _, ident in seen} == {threading.get_ident()}


def test_recorded_strategy_is_the_one_the_responder_was_given(
    make_app: AppFactory, profile: dict
) -> None:
    backend = scripted_backend()
    app = make_app(backend)
    session = app.start_session("p1", profile=profile)
    taxonomy = app.services.taxonomy
    for text in ["I feel hopeless.", "Maybe I could try.", "whatever, no, never."]:
        before = len(backend.calls)
        record = session.respond(text).record
        respond_call = _turn_requests(backend, before)[-1]
        name = taxonomy.strategy(record.strategy).name
        assert f"Strategy for this reply: {name}" in respond_call.messages[0]["content"]


def test_strategy_follows_attitude_and_varies(make_app: AppFactory, profile: dict) -> None:
    app = make_app(Counselor(pick=0))
    taxonomy = app.services.taxonomy
    session = app.start_session("p1", profile=profile)
    negative = [
        session.respond(t).record for t in ["no, never.", "no, not really.", "no, never again."]
    ]
    assert all(taxonomy.strategy(r.strategy).attitude == "negative" for r in negative)
    assert all(a.strategy != b.strategy for a, b in itertools.pairwise(negative))
    positive = session.respond("I tried the breathing and it helped.").record
    assert positive.perception.attitude == "positive"
    assert taxonomy.strategy(positive.strategy).attitude == "positive"


def test_session_closes_on_the_patients_wish(make_app: AppFactory, profile: dict) -> None:
    app = make_app()
    session = app.start_session("p1", profile=profile)
    assert not session.respond("Work is hard.").closing
    result = session.respond("Thanks, that's all for today, bye.")
    assert result.closing and session.status == "closing"


def test_session_closes_at_the_round_cap(
    make_app: AppFactory, settings: Any, profile: dict
) -> None:
    settings.limits.max_rounds = 3
    app = make_app()
    session = app.start_session("p1", profile=profile)
    flags = [session.respond(f"Another thing happened, number {i}.").closing for i in range(3)]
    assert flags == [False, False, True]


def test_explicit_suicidal_intent_gets_the_crisis_reply_whatever_the_model_says(
    make_app: AppFactory, profile: dict
) -> None:
    backend = scripted_backend(Counselor(replies=["Let's talk about your weekend plans!"]))
    app = make_app(backend)
    session = app.start_session("p1", profile=profile)
    before = len(backend.calls)
    result = session.respond("I have decided to kill myself tonight, I have the pills ready.")
    record = result.record
    assert record.crisis and record.risk_level == "high"
    assert record.strategy == "crisis_protocol"
    assert not record.closing
    assert "?" in result.reply
    assert any(r in result.reply for r in app.services.resources.markers())
    assert len(_turn_requests(backend, before)) <= 3
    assert app.services.store.risk_events("p1")


def test_crisis_still_answered_when_the_model_is_down(make_app: AppFactory, profile: dict) -> None:
    from theramind.llm import TransientModelError

    def down(request: Request) -> Any:
        return TransientModelError("connection refused")

    app = make_app(ScriptedBackend(handler=down))
    app.services.settings.models["counselor"].backoff_s = 0.0
    session = app.start_session("p1", profile=profile)
    result = session.respond("I want to end my life.")
    assert result.record.crisis
    assert any(r in result.reply for r in app.services.resources.markers())
    assert "respond" in result.record.fallbacks and "perceive" in result.record.fallbacks


def test_open_risk_restricts_later_strategies(make_app: AppFactory, profile: dict) -> None:
    app = make_app(Counselor(pick=0))
    taxonomy = app.services.taxonomy
    session = app.start_session("p1", profile=profile)
    session.respond("Sometimes I wish I could go to sleep and never wake up.")
    later = session.respond("I tried the breathing and it helped.").record
    assert taxonomy.strategy(later.strategy).safe_under_risk


def test_a_carried_over_risk_restricts_the_next_sessions_strategies(
    make_app: AppFactory, profile: dict
) -> None:
    app = make_app(Counselor(pick=0))
    taxonomy = app.services.taxonomy
    first = app.start_session("p1", profile=profile)
    assert first.respond("Sometimes I wish I could go to sleep and never wake up.").record.crisis
    first.end()
    second = app.start_session("p1")
    assert second.plan.open_risk is not None
    for text in ("Work was a lot this week.", "I tried the breathing and it helped."):
        record = second.respond(text).record
        assert not record.crisis
        assert taxonomy.strategy(record.strategy).safe_under_risk, record.strategy


def test_a_wish_to_end_seen_only_by_the_model_waits_for_min_rounds(
    make_app: AppFactory, profile: dict
) -> None:
    class EagerToEnd(Counselor):
        def __call__(self, request: Request) -> Any:
            answer = super().__call__(request)
            if request.schema_name == "Perception":
                answer["wants_to_end"] = True
            return answer

    app = make_app(EagerToEnd())
    session = app.start_session("p1", profile=profile)
    flags = [session.respond(f"Something else happened, part {i}.").closing for i in range(3)]
    assert flags == [False, False, True]
