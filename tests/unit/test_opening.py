"""The opening line is written for the patient and is true to the last therapy decision."""

from __future__ import annotations

import re
from typing import Any

import pytest

from conftest import AppFactory
from scripted import Counselor
from theramind.config import Settings
from theramind.llm import Request, ScriptedBackend
from theramind.opening import opening_line, opening_phrases
from theramind.records import RiskEvent, SessionPlan, TherapyAction

LONG_PROBLEM = (
    "She worries most of the day about her health, her job and her children's safety. "
    "Symptoms: constant tension, poor sleep, irritability, trouble concentrating at work; "
    "avoids the news and checks her pulse many times a day. " * 3
)
CLINICIAN_FOCUS = (
    "assessment of the presenting problem: She worries most of the day about her health. "
    "Symptoms: c…"
)
LANGUAGES = ("en", "zh")


def _names(settings: Settings) -> dict[str, str]:
    return {t.id: t.name for t in settings.taxonomy().therapies}


def _plan(**changes: Any) -> SessionPlan:
    base: dict[str, Any] = {
        "patient_id": "p1",
        "session_no": 2,
        "pseudonym": "Alex",
        "presenting_problem": LONG_PROBLEM,
        "therapies": ["cbt"],
        "previous_therapies": ["cbt"],
        "phase": "assessment",
        "last_action": "keep",
        "focus": CLINICIAN_FOCUS,
    }
    return SessionPlan(**{**base, **changes})


def _lead(template: str) -> str:
    """Return a decision sentence's fixed text before its first slot."""
    return template.split("{", 1)[0].strip()


def assert_for_the_patient(text: str, settings: Settings, language: str) -> None:
    """Fail if an opening shows clinician fields, phase ids, cut text or a nameless greeting."""
    low = text.lower()
    for banned in ("symptoms", "presenting problem", "assessment of", "she ", " her ", "there."):
        assert banned not in low, f"{banned!r} in {text!r}"
    assert "…" not in text and "..." not in text and LONG_PROBLEM[:40] not in text
    phase_ids = settings.taxonomy().phase_ids
    assert not {w for w in re.findall(r"[a-z_]+", low)} & set(phase_ids), text
    assert not re.search(r"\{\w+\}", text), f"an unfilled slot in {text!r}"
    if language == "zh":
        assert not re.search(r"[A-Za-z]{3,}", text.replace("Alex", "")), text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("action", ["keep", "adjust", "switch"])
def test_the_opening_states_the_decision_taken(
    settings: Settings, language: str, action: TherapyAction
) -> None:
    therapies = {"keep": ["cbt"], "adjust": ["cbt", "act"], "switch": ["act"]}[action]
    plan = _plan(last_action=action, therapies=therapies)
    text = opening_line(plan, _names(settings), language=language)
    phrases = opening_phrases(language)
    decisions = phrases.decision.model_dump()
    assert _lead(decisions[action]) in text
    for other in {"keep", "adjust", "switch"} - {action}:
        assert _lead(decisions[other]) not in text, f"{other} said after a {action}"
    for tid in therapies:
        assert (phrases.approaches[tid].name or _names(settings)[tid]) in text
    if action != "keep":  # the new approach is explained in plain words
        new = next(t for t in therapies if t not in plan.previous_therapies)
        assert phrases.approaches[new].about in text
    assert_for_the_patient(text, settings, language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_first_session_opening_greets_by_name_or_without_one(
    settings: Settings, language: str
) -> None:
    named = opening_line(
        _plan(session_no=1, last_action="start"), _names(settings), language=language
    )
    unnamed = opening_line(
        _plan(session_no=1, last_action="start", pseudonym=""), _names(settings), language=language
    )
    assert "Alex" in named and "Alex" not in unnamed
    assert unnamed.startswith(opening_phrases(language).first_session.unnamed)
    for text in (named, unnamed):
        assert_for_the_patient(text, settings, language)
        assert text.endswith(("?", "？"))


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_open_risk_opening_checks_in_on_safety_last(settings: Settings, language: str) -> None:
    event = RiskEvent(
        patient_id="p1",
        session_no=1,
        turn=2,
        level="moderate",
        source="screen",
        categories=["passive_death_wish"],
    )
    plan = _plan(open_risk=event, pseudonym="", last_action="switch", therapies=["act"])
    text = opening_line(plan, _names(settings), language=language)
    risk = opening_phrases(language).risk
    assert text.endswith(risk.question)
    assert risk.categories["passive_death_wish"] in text
    assert text.startswith(opening_phrases(language).welcome.unnamed)
    assert_for_the_patient(text, settings, language)


def test_a_plain_focus_is_kept_and_a_clinician_one_is_left_out(settings: Settings) -> None:
    names = _names(settings)
    kept = opening_line(_plan(focus="Sleep routine."), names)
    assert "sleep routine" in kept
    for focus in (CLINICIAN_FOCUS, "her sleep routine", "intervention planning", "x" * 150):
        assert focus.lower().rstrip(".") not in opening_line(_plan(focus=focus), names).lower()


def test_an_unknown_language_gets_english(settings: Settings) -> None:
    names = _names(settings)
    assert opening_line(_plan(), names, language="es") == opening_line(_plan(), names)


def test_every_language_file_covers_the_catalog(settings: Settings) -> None:
    taxonomy = settings.taxonomy()
    for language in LANGUAGES:
        phrases = opening_phrases(language, settings.config_dir_path)
        assert set(phrases.phases) == set(taxonomy.phase_ids), language
        assert {t.id for t in taxonomy.therapies} <= set(phrases.approaches), language
        assert all(a.about for a in phrases.approaches.values()), language


def _fails_the_summary() -> ScriptedBackend:
    """Decide a switch, and break the summary so its fallback carries the intake focus on."""
    counselor = Counselor(verdict="not_effective")

    def handler(request: Request) -> Any:
        if request.schema_name == "SessionSummary":
            return "not json at all"
        return counselor(request)

    return ScriptedBackend(handler=handler)


def test_the_next_session_opening_after_a_switch_is_for_the_patient(
    make_app: AppFactory, profile: dict, settings: Settings
) -> None:
    app = make_app(_fails_the_summary())
    profile.update(pseudonym="", presenting_problem=LONG_PROBLEM[:3900])
    first = app.start_session("p1", profile=profile)
    assert first.plan.focus.startswith("assessment of the presenting problem")
    first.respond("Work has been hard.")
    outcome = first.end()
    assert outcome.decision.action == "switch" and "summary" in outcome.fallbacks
    second = app.start_session("p1")
    assert second.plan.last_action == "switch"
    assert second.plan.focus == first.plan.focus  # the fallback summary's focus
    text = second.opening
    decision = opening_phrases("en").decision
    assert _lead(decision.switch) in text and _lead(decision.keep) not in text
    assert _names(settings)[outcome.decision.therapies[0]] in text
    assert text.startswith("Welcome back.")
    assert_for_the_patient(text, settings, "en")


def test_the_fixed_therapy_ablation_opens_with_the_decision_it_applied(
    make_app: AppFactory, profile: dict, settings: Settings
) -> None:
    from theramind.simulation.counselors import FixedTherapyMind

    app = FixedTherapyMind(make_app(Counselor(verdict="not_effective")).services)
    first = app.start_session("p1", profile=profile)
    first.respond("Work has been hard.")
    assert first.end().decision.action == "switch"  # proposed, not applied
    second = app.start_session("p1")
    assert second.plan.therapies == first.plan.therapies and second.plan.last_action == "keep"
    decision = opening_phrases("en").decision
    assert _lead(decision.keep) in second.opening and _lead(decision.switch) not in second.opening
    assert _names(settings)[first.plan.therapies[0]] in second.opening
