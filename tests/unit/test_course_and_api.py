"""The cross-session loop and the Python API: therapy decisions, phases, resume, bad input."""

from __future__ import annotations

import gc

import pytest

from conftest import AppFactory
from scripted import Counselor
from theramind import (
    InputError,
    SessionClosedError,
    TheraMind,
    UnknownPatientError,
)
from theramind.graphs.course import failed_therapies
from theramind.records import PatientProfile, SessionPlan


def _run_session(app, texts=("Work is hard.", "I slept badly.", "bye")):  # type: ignore[no-untyped-def]
    session = app.start_session("p1")
    for text in texts:
        session.respond(text)
    return session, session.end()


def test_therapy_kept_when_effective_and_phase_advances(
    make_app: AppFactory, profile: dict
) -> None:
    app = make_app(Counselor(verdict="effective"))
    app.register_patient(profile)
    s1, out1 = _run_session(app)
    assert out1.efficacy.verdict == "effective"
    assert out1.decision.action == "keep"
    assert out1.decision.therapies == s1.plan.therapies
    assert out1.decision.phase == app.services.taxonomy.next_phase(s1.plan.phase)
    s2 = app.start_session("p1")
    assert s2.session_no == 2 and s2.plan.therapies == out1.decision.therapies
    assert s2.plan.phase == out1.decision.phase


def test_therapy_switched_when_not_effective_never_back_to_a_failed_one(
    make_app: AppFactory, profile: dict
) -> None:
    app = make_app(Counselor(verdict="not_effective"))
    app.register_patient(profile)
    used: list[list[str]] = []
    for _ in range(4):
        session, outcome = _run_session(app)
        used.append(session.plan.therapies)
        assert outcome.decision.action == "switch"
        assert not set(outcome.decision.therapies) & set(session.plan.therapies)
        assert 1 <= len(outcome.decision.therapies) <= 2
        earlier = {t for therapies in used for t in therapies}
        assert not set(outcome.decision.therapies) & earlier
    history = app.history("p1")
    assert failed_therapies(history) == [t for therapies in used for t in therapies]
    assert all(h.decision.reason for h in history)


def test_second_session_opening_reflects_the_decision(make_app: AppFactory, profile: dict) -> None:
    app = make_app(Counselor(verdict="not_effective"))
    app.register_patient(profile)
    _, outcome = _run_session(app)
    s2 = app.start_session("p1")
    names = {t.id: t.name for t in app.services.taxonomy.therapies}
    assert names[outcome.decision.therapies[0]] in s2.opening
    assert outcome.summary.next_focus.rstrip(".") in s2.opening


def test_close_makes_at_most_four_calls(make_app: AppFactory, profile: dict) -> None:
    from scripted import scripted_backend

    backend = scripted_backend()
    app = make_app(backend)
    session = app.start_session("p1", profile=profile)
    session.respond("Work is hard.")
    before = len(backend.calls)
    outcome = session.end()
    assert len(backend.calls) - before <= 4
    assert len(outcome.calls) == len(backend.calls) - before
    assert session.status == "closed"
    with pytest.raises(SessionClosedError):
        session.respond("one more thing")
    with pytest.raises(SessionClosedError):
        session.end()


def test_resume_after_a_crash_loses_no_turn(make_app: AppFactory, profile: dict) -> None:
    first = make_app()
    session = first.start_session("p1", profile=profile)
    session.respond("Work is hard.")
    session.respond("My boss shouts at me.")
    number = session.session_no
    # The process dies here: no end(), no close; its handles are gone.
    del session
    gc.collect()  # a handle in a reference cycle is gone only once collected
    second = make_app()
    resumed = second.start_session("p1")
    assert resumed.session_no == number
    assert [t.turn for t in resumed.turns] == [1, 2]
    record = resumed.respond("I keep thinking about it at night.").record
    assert record.turn == 3
    assert [t.patient_text for t in resumed.turns][:2] == ["Work is hard.", "My boss shouts at me."]


class Killed(BaseException):
    """Stands in for the process dying: not an Exception, so nothing catches it."""


def test_crash_inside_a_turn_keeps_completed_turns(make_app: AppFactory, profile: dict) -> None:
    counselor = Counselor()
    calls = {"n": 0}

    def handler(request):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if request.schema_name == "output" and calls["n"] > 7:  # intake + 2 turns
            raise Killed("process killed mid-turn")
        return counselor(request)

    from theramind.llm import ScriptedBackend

    first = make_app(ScriptedBackend(handler=handler))
    session = first.start_session("p1", profile=profile)
    session.respond("one")
    session.respond("two")
    with pytest.raises(Killed):
        session.respond("three")
    del session  # the killed process's handles are gone with it
    gc.collect()  # the exception's frames hold the handle in a cycle until collected
    second = make_app()
    resumed = second.start_session("p1")
    assert [t.patient_text for t in resumed.turns] == ["one", "two"]
    assert resumed.respond("three again").record.turn == 3


@pytest.mark.parametrize("bad", ["", "   \n", 42, None, "x" * 5000])
def test_bad_messages_are_rejected_and_nothing_is_written(
    make_app: AppFactory, profile: dict, bad: object
) -> None:
    app = make_app()
    session = app.start_session("p1", profile=profile)
    with pytest.raises(InputError):
        session.respond(bad)  # type: ignore[arg-type]
    assert session.turns == []


def test_unknown_patient_and_bad_ids(make_app: AppFactory) -> None:
    app = make_app()
    with pytest.raises(UnknownPatientError):
        app.start_session("nobody")
    with pytest.raises(InputError):
        app.start_session("")
    with pytest.raises(UnknownPatientError):
        app.history("nobody")


def test_delete_patient_erases_records_and_memories(make_app: AppFactory, profile: dict) -> None:
    app = make_app()
    _run_session_with_profile = app.start_session("p1", profile=profile)
    _run_session_with_profile.respond("My dog Rex died last spring.")
    other = dict(profile, patient_id="p2")
    app.start_session("p2", profile=other).respond("My cat is fine.")
    assert app.export_patient("p1")["memories"]
    app.delete_patient("p1")
    with pytest.raises(UnknownPatientError):
        app.patient("p1")
    assert app.services.memory is not None
    assert app.services.memory.count("p1") == 0
    assert app.services.memory.count("p2") > 0


async def test_async_api(make_app: AppFactory, profile: dict) -> None:
    app = make_app()
    session = await app.astart_session("p1", profile=profile)
    result = await session.arespond("I feel tense.")
    assert result.reply
    chunks = [c async for c in session.astream("Still tense, bye.")]
    assert "".join(chunks).strip()
    assert session.last is not None and session.last.closing
    outcome = await session.aend()
    assert outcome.session_no == 1


def test_stream_yields_the_reply(make_app: AppFactory, profile: dict) -> None:
    app = make_app()
    session = app.start_session("p1", profile=profile)
    text = "".join(session.stream("I had a rough week."))
    assert session.last is not None
    assert text.strip() == session.last.reply or session.last.record.fallbacks


def test_discard_sessions_erases_from_a_session_on(make_app: AppFactory, profile: dict) -> None:
    app = make_app()
    for line in ("My dog Rex died last spring.", "Work has been awful since March."):
        session = app.start_session("p1", profile=profile)
        session.respond(line)
        session.end()
    third = app.start_session("p1")
    third.respond("Half a session, then the power went.")
    app.start_session("p2", profile=dict(profile, patient_id="p2")).respond("My cat is fine.")
    memory = app.services.memory
    assert memory is not None
    kept_before = [m for m in memory.export_patient("p1") if m.session_no < 2]

    assert app.discard_sessions("p1", 2) == 2
    assert [o.session_no for o in app.history("p1")] == [1]
    assert memory.export_patient("p1") == kept_before  # session 1 and the intake stay
    assert any(m.kind == "intake" for m in kept_before)
    assert app.services.store.open_session("p1") is None
    assert memory.count("p2") > 0 and app.services.store.turns("p2", 1)
    for no in (2, 3):
        assert not app.session_graph.get_state({"configurable": {"thread_id": f"p1:{no}"}}).values
    redo = app.start_session("p1")
    assert redo.session_no == 2 and not redo.resumed and redo.turns == []
    assert app.discard_sessions("p1", 5) == 0
    with pytest.raises(UnknownPatientError):
        app.discard_sessions("nobody", 1)
    with pytest.raises(InputError):
        app.discard_sessions("p1", 0)


def test_the_plan_records_the_intake_call_and_can_be_overridden(
    make_app: AppFactory, profile: dict
) -> None:
    app = make_app()
    first = app.start_session("p1", profile=profile)
    assert [c.agent for c in first.plan.opening_calls] == ["strategist.intake"]
    assert first.plan.opening_calls[0].prompt_tokens > 0
    first.respond("Hello.")
    first.release()
    again = app.start_session("p1")
    assert again.resumed  # left open: picked up, no new plan
    again.end()
    assert app.start_session("p1").plan.opening_calls == []

    class Pinned(TheraMind):
        def next_plan(self, profile: PatientProfile) -> SessionPlan:
            plan = super().next_plan(profile)
            plan.focus = "the pinned focus"
            return plan

    pinned = Pinned(app.services)
    assert pinned.start_session("p2", profile=dict(profile, patient_id="p2")).plan.focus == (
        "the pinned focus"
    )


def test_delete_patient_leaves_a_patient_whose_id_extends_it(
    make_app: AppFactory, profile: dict
) -> None:
    app = make_app()
    for pid in ("a", "a:b"):
        app.start_session(pid, profile=dict(profile, patient_id=pid)).respond("I slept badly.")
    app.delete_patient("a")
    kept = app.session_graph.get_state({"configurable": {"thread_id": "a:b:1"}})
    assert kept.values.get("turns")  # "a:b" is another person: their checkpoint stays
    assert not app.session_graph.get_state({"configurable": {"thread_id": "a:1"}}).values
    assert app.start_session("a:b").turns  # and their open session resumes with its turn
    with pytest.raises(UnknownPatientError):
        app.delete_patient("a")


def test_a_plan_stored_with_the_retired_previous_summary_still_loads() -> None:
    stored = {"patient_id": "p1", "session_no": 2, "therapies": ["cbt"], "phase": "assessment"}
    plan = SessionPlan.model_validate({**stored, "previous_summary": "we talked about work"})
    assert plan.model_dump(include=set(stored)) == stored
    assert "previous_summary" not in plan.model_dump()
    with pytest.raises(ValueError, match="focuss"):
        SessionPlan.model_validate({**stored, "focuss": "typo"})
