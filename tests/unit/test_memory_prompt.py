"""Memory in the prompt: intake seeds session 1, recall skips quoted turns, prompts stay flat."""

from __future__ import annotations

from statistics import fmean
from typing import Any

from conftest import AppFactory
from scripted import Counselor, scripted_backend
from theramind.agents.base import format_formulation
from theramind.agents.intake import intake_facts, intake_focus
from theramind.config import Settings
from theramind.llm import Request, ScriptedBackend
from theramind.memory import HashingEmbedder, build_memory
from theramind.memory.recall import estimate_tokens
from theramind.records import Formulation, PatientProfile, SymptomCriterion

DOG = {
    "patient_id": "p-dog",
    "pseudonym": "Sam",
    "history": "Lives alone since a divorce. Her dog Biscuit died last spring after 14 years.",
    "presenting_problem": "Grief and low mood; stopped seeing friends.",
    "category": "grief",
}


def _data(request: Request) -> str:
    """The last user message: where the context blocks (memories, formulation) sit."""
    return next(m["content"] for m in reversed(request.messages) if m["role"] == "user")


def test_intake_facts_split_the_record_and_focus_names_the_problem() -> None:
    profile = PatientProfile.model_validate(DOG)
    facts = intake_facts(profile)
    assert facts[0] == "presenting problem: Grief and low mood; stopped seeing friends."
    assert "Her dog Biscuit died last spring after 14 years." in facts
    assert intake_focus(profile).startswith("assessment of the presenting problem: Grief")
    assert intake_facts(PatientProfile(patient_id="blank")) == []
    assert intake_focus(PatientProfile(patient_id="blank")) == ""


def test_session_one_recalls_the_intake_and_sees_a_provisional_formulation(
    make_app: AppFactory,
) -> None:
    backend = scripted_backend()
    app = make_app(backend)
    session = app.start_session("p-dog", profile=DOG)
    assert session.plan.focus.startswith("assessment of the presenting problem")
    before = len(backend.calls)
    record = session.respond("I keep thinking about Biscuit, my dog.").record
    intake = [m for m in record.recalled if m.kind == "intake"]
    assert any("Biscuit" in m.text and m.session_no == 0 for m in intake)
    perceive, plan, reply = backend.calls[before:]
    assert "Provisional, from intake only: Grief and low mood" in _data(perceive)
    assert "[intake] Her dog Biscuit died" in _data(plan)
    assert "[intake] Her dog Biscuit died" in _data(reply)


def test_reseeding_the_intake_replaces_it_and_touches_no_one_else(settings: Settings) -> None:
    memory = build_memory(settings, embedder=HashingEmbedder())
    assert memory.remember_intake("a", ["first fact", "second fact", "third fact"]) == 3
    memory.remember_intake("b", ["b's only fact"])
    memory.remember_intake("a", ["a corrected fact"])
    assert [m.text for m in memory.export_patient("a")] == ["a corrected fact"]
    assert [m.text for m in memory.export_patient("b")] == ["b's only fact"]


def test_recall_skips_the_turns_the_prompt_already_quotes(
    make_app: AppFactory, settings: Settings
) -> None:
    window = settings.limits.recent_turns_in_prompt
    app = make_app()
    session = app.start_session("p-dog", profile=DOG)
    said = "My sister and I argued about our mother again on the phone"
    records = [session.respond(f"{said}, part {n}.").record for n in range(1, 6)]
    for record in records:
        quoted = range(record.turn - window, record.turn)
        own = [m for m in record.recalled if m.session_no == 1 and m.kind == "disclosure"]
        assert all(m.turn not in quoted for m in own)
    # Turn 5 still recalls turn 1, which has left the quoted window.
    assert any(m.turn == 1 for m in records[-1].recalled)


def _big_formulation() -> Formulation:
    long = "a recurring difficulty described at great length " * 4
    return Formulation(
        presenting_problems=[f"problem {i}: {long}" for i in range(5)],
        symptoms=[
            SymptomCriterion(symptom=f"symptom {i} {long}"[:120], criterion="DSM-5 A1")
            for i in range(6)
        ],
        considered=["generalised anxiety disorder", "major depressive disorder", "insomnia"],
        maintaining_factors=[f"factor {i} {long}" for i in range(5)],
        strengths=[f"strength {i}" for i in range(5)],
        severity="moderate",
    )


def test_formulation_block_keeps_its_budget_and_the_severity() -> None:
    big = _big_formulation()
    bounded = format_formulation(big, max_tokens=120)
    assert len(bounded) <= 120 * 4
    assert bounded.splitlines()[-1] == "Severity: moderate"
    assert bounded.startswith("Problems: problem 0")
    full = format_formulation(big)
    assert "factor 4" in full and "strength 4" in full and len(full) > 4 * len(bounded)
    assert format_formulation(None) == "(none yet)"
    intake = format_formulation(None, intake="Panic on buses. " * 100, max_tokens=30)
    assert intake.startswith("Provisional, from intake only: Panic") and len(intake) <= 120


TOPICS = [
    "I lay awake again worrying about my sister",
    "work was a lot and I felt like a failure",
    "we argued about our mother on the phone",
    "I tried the sleep diary but forgot twice",
    "my neighbour's dog barked all night",
    "I skipped lunch because of deadlines",
    "a friend invited me out and I said no",
    "the bus was crowded and my heart raced",
    "my manager praised the report for once",
    "I cried watching an old film with Biscuit in the photos",
    "I walked in the park on Sunday morning",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _lines(session_no: int) -> list[str]:
    """Four different disclosures for a session, then goodbye."""
    picks = [TOPICS[(3 * session_no + i) % len(TOPICS)] for i in range(4)]
    days = [DAYS[(session_no + i) % len(DAYS)] for i in range(4)]
    return [f"On {d} {t}." for d, t in zip(days, picks, strict=True)] + ["bye, thank you"]


def _treat(backend: ScriptedBackend, make_app: AppFactory, sessions: int) -> list[list[Request]]:
    """Run `sessions` five-turn sessions; return each session's turn requests."""
    app = make_app(backend)
    out = []
    for n in range(1, sessions + 1):
        session = app.start_session("p-dog", profile=DOG)
        before = len(backend.calls)
        for line in _lines(n):
            session.respond(line)
        out.append(backend.calls[before:])
        session.end()
    assert len(app.services.memory.export_patient("p-dog")) >= 4 * sessions  # memory grew
    return out


def _tokens(requests: list[Request]) -> float:
    """Mean prompt tokens per turn (three calls a turn), counted as the scripted model does."""
    chars = sum(len(m["content"]) for r in requests for m in r.messages)
    return chars / 4 / (len(requests) / 3)


def _block(request: Request, tag: str) -> str | None:
    text = _data(request)
    if f"<{tag}>" not in text:
        return None
    return text.split(f"<{tag}>\n", 1)[1].split(f"\n</{tag}>", 1)[0]


def test_prompt_per_turn_stays_flat_over_ten_sessions(make_app: AppFactory) -> None:
    """With ordinary notes, a turn in session 10 costs what a turn in session 1 did."""
    per_session = [_tokens(s) for s in _treat(scripted_backend(), make_app, 10)]
    assert per_session[-1] / per_session[0] <= 1.15, per_session
    assert max(per_session) / per_session[0] <= 1.15, per_session


def test_long_notes_fill_the_budgets_but_never_pass_them(
    make_app: AppFactory, settings: Settings
) -> None:
    """Notes as long as the schemas allow: every block stays in budget, growth stops."""
    counselor = Counselor()

    def handler(request: Request) -> Any:
        if request.schema_name == "Formulation":
            return _big_formulation().model_dump(mode="json")
        if request.schema_name == "SessionSummary":
            return {
                "summary": ("We worked on sleep, the sister and work, and on the diary. " * 9)[
                    :600
                ],
                "next_focus": ("follow up on the sleep plan and the sister " * 5)[:200],
                "homework": "keep a sleep diary",
                "salient": [
                    {"kind": "event", "text": "she argued with her sister about their mother"},
                    {"kind": "goal", "text": "sleep before midnight on work nights"},
                ],
            }
        return counselor(request)

    sessions = _treat(ScriptedBackend(handler=handler), make_app, 10)
    budget, item = settings.memory.token_budget, settings.memory.item_tokens
    for requests in sessions:
        for request in requests:
            memories = _block(request, "memories")
            if memories is not None and memories != "(nothing relevant)":
                assert estimate_tokens(memories) <= budget
                assert all(estimate_tokens(line) <= item for line in memories.splitlines())
            formulation = _block(request, "formulation")
            if formulation is not None:
                assert estimate_tokens(formulation) <= settings.limits.formulation_tokens
    per_session = [_tokens(s) for s in sessions]
    # Once memory holds more than a block's worth, history length no longer shows in the prompt.
    assert max(per_session[4:]) / fmean(per_session[2:5]) <= 1.05, per_session
