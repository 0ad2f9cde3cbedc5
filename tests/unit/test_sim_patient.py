"""Simulated patients: reproducible text, attitude dynamics, disclosure, latent state, LLM play."""

from __future__ import annotations

import random
import re
from itertools import pairwise

import pytest

from theramind.agents.heuristics import wants_to_end
from theramind.config import Settings
from theramind.llm import ModelRouter, ScriptedBackend
from theramind.simulation.latent import (
    LatentState,
    SessionInfo,
    TurnSignal,
    reply_fit,
    understood_fraction,
)
from theramind.simulation.llm_patient import LLMPatient, clean_reply, degenerate
from theramind.simulation.patient import PatientSettings
from theramind.simulation.profiles import SimProfile, load_profiles
from theramind.simulation.scripted_patient import ScriptedPatient
from theramind.text import word_units

PROFILES = load_profiles()
SUPPORT = "It sounds like that has been really painful. Tell me more about how it feels."
ATTITUDES = {"reflection_of_feelings": "negative", "new_actions": "positive"}


def _session(patient: ScriptedPatient, profile: SimProfile, no: int, seed: int) -> list[str]:
    patient.reset(profile, no, random.Random(seed))
    said, text = [], "Hello, what brings you here today?"
    for _ in range(8):
        turn = patient.step(text)
        said.append(turn.text)
        if turn.wants_to_end:
            break
    return said


def test_scripted_patient_is_reproducible_and_varied() -> None:
    profile = PROFILES["addiction-sam"]
    a = _session(ScriptedPatient(), profile, 1, 3)
    b = _session(ScriptedPatient(), profile, 1, 3)
    c = _session(ScriptedPatient(), profile, 1, 4)
    assert a == b
    assert a != c
    assert len(set(a)) == len(a)


@pytest.mark.parametrize("pid", sorted(PROFILES))
def test_utterances_are_short_and_sessions_close_with_goodbye(pid: str) -> None:
    patient = ScriptedPatient()
    profile = PROFILES[pid]
    goodbye = {"en": "bye", "zh": "再见"}[profile.language]
    for no in (1, 2, 3):
        said = _session(patient, profile, no, no)
        assert 4 <= len(said) <= 5
        assert wants_to_end(said[-1]) and goodbye in said[-1].lower()
        assert not any(wants_to_end(s) for s in said[:-1])
        for text in said:
            assert word_units(text) <= 60
            assert len(re.findall(r"[.!?](?:\s|$)|[。！？]", text)) <= 2, text
            if profile.language == "zh":  # a Chinese patient speaks Chinese
                letters = [ch for ch in text if ch.isalpha()]
                assert sum("\u4e00" <= ch <= "\u9fff" for ch in letters) / len(letters) > 0.9


def test_attitude_is_mostly_positive_and_negativity_persists() -> None:
    profile = PROFILES["emotion-lena"].model_copy(update={"resistance": 0.6})
    patient = ScriptedPatient(PatientSettings(close_after=(200, 200)))
    patient.reset(profile, 1, random.Random(0))
    patient.latent = LatentState(phq9=13.5, gad7=10, alliance=0.5)
    attitudes = [patient.step(SUPPORT).attitude for _ in range(2000)]
    negative = attitudes.count("negative") / len(attitudes)
    assert 0.22 < negative < 0.38
    after_neg = [b for a, b in pairwise(attitudes) if a == "negative"]
    assert after_neg.count("negative") / len(after_neg) > 0.5


def test_mismatched_replies_make_resistance_stickier() -> None:
    def stay_rate(reply: str) -> float:
        patient = ScriptedPatient(PatientSettings(close_after=(500, 500)))
        patient.reset(PROFILES["youth-noah"], 1, random.Random(1))
        attitudes = [patient.step(reply).attitude for _ in range(1500)]
        pairs = [(a, b) for a, b in pairwise(attitudes) if a == "negative"]
        return sum(b == "negative" for _, b in pairs) / len(pairs)

    pushy = "What if you try a small experiment this week and notice the pattern?"
    assert stay_rate(pushy) > stay_rate(SUPPORT) + 0.1


def test_disclosure_is_gradual() -> None:
    profile = PROFILES["love-mara"]
    patient = ScriptedPatient()
    revealed: list[tuple[int, int]] = []
    for no in range(1, 7):
        patient.reset(profile, no, random.Random(no))
        text = "Hello."
        for _ in range(8):
            turn = patient.step(SUPPORT)
            for fact in turn.disclosed:
                revealed.append((no, fact))
                assert profile.disclosures[fact].text.rstrip(".").lower()[5:40] in turn.text.lower()
                assert no >= profile.disclosures[fact].session
            text = turn.text
            if turn.wants_to_end:
                break
        assert text
    facts = [f for _, f in revealed]
    assert len(facts) == len(set(facts))
    assert revealed and revealed[0][0] >= 1
    assert patient.latent is not None and patient.latent.disclosed == sorted(set(facts))


def _treat(therapy: str, fit_strategy: str, sessions: int = 5) -> list[float]:
    profile = PROFILES["anxiety-priya"]
    patient = ScriptedPatient(strategy_attitudes=ATTITUDES)
    scores = []
    for no in range(1, sessions + 1):
        patient.reset(profile, no, random.Random(no))
        signals = []
        while True:
            turn = patient.step(SUPPORT)
            strategy = fit_strategy if turn.attitude == "negative" else "new_actions"
            signals.append(TurnSignal(attitude=turn.attitude, strategy=strategy, reply=SUPPORT))
            if turn.wants_to_end:
                break
        patient.end_session(SessionInfo(session_no=no, therapies=[therapy], turns=signals))
        assert patient.latent is not None
        scores.append(patient.latent.phq9 + patient.latent.gad7)
    return scores


def test_latent_improves_under_the_responsive_therapy_only() -> None:
    start = PROFILES["anxiety-priya"].latent
    baseline = start.phq9 + start.gad7
    good = _treat("cbt", "reflection_of_feelings")
    wrong = _treat("mi", "reflection_of_feelings")
    assert good[-1] < baseline - 5
    assert wrong[-1] >= baseline - 0.5
    assert all(b < a for a, b in pairwise(good))


def test_feeling_misunderstood_weakens_the_effect() -> None:
    understood = _treat("cbt", "reflection_of_feelings")
    misread = _treat("cbt", "new_actions")
    assert misread[-1] > understood[-1]


def test_understood_fraction_uses_strategies_then_a_text_proxy() -> None:
    turns = [
        TurnSignal(attitude="negative", strategy="reflection_of_feelings"),
        TurnSignal(attitude="negative", strategy="new_actions"),
        TurnSignal(attitude="negative", strategy=None, reply=SUPPORT),
        TurnSignal(attitude="positive", strategy="crisis_protocol"),
    ]
    assert understood_fraction(turns, ATTITUDES) == pytest.approx(0.75)
    assert reply_fit("What if you try a new plan?", "negative") == 0.0
    assert reply_fit("What if you try a new plan?", "positive") == 1.0


def test_questionnaire_follows_the_latent_state() -> None:
    patient = ScriptedPatient(strategy_attitudes=ATTITUDES)
    patient.reset(PROFILES["rare-ada"], 1, random.Random(5))
    turn = patient.step("Hello")
    q = patient.end_session(
        SessionInfo(
            session_no=1,
            therapies=["act"],
            turns=[TurnSignal(attitude=turn.attitude, strategy="reflection_of_feelings")],
        )
    )
    assert q.source == "latent"
    assert patient.latent is not None
    assert abs(q.phq9 - patient.latent.phq9) <= 5
    assert all(1 <= v <= 5 for v in q.alliance.model_dump().values())


def test_clean_reply_strips_labels_and_extra_sentences() -> None:
    raw = 'Patient: "I guess so. It is hard. Really hard.\nCounselor: tell me more"'
    assert clean_reply(raw, "Priya", 60) == "I guess so. It is hard."
    assert clean_reply("Priya: fine.", "Priya", 60) == "fine."
    assert degenerate("I'm all ears, I'm all ears, and I'm all ears. I'm all ears, all ears.")
    assert not degenerate("I keep worrying about my heart at night, and it wears me out.")


def test_llm_patient_speaks_through_the_patient_role(settings: Settings) -> None:
    backend = ScriptedBackend(
        {
            "patient": [
                "Patient: I keep worrying about my heart, honestly.",
                "",
                "Goodbye, see you next week!",
                "Thanks, this helped.",
                "Okay.",
            ]
        }
    )
    router = ModelRouter(settings, backends={"patient": backend})
    patient = LLMPatient(router, PatientSettings(close_after=(5, 5)), strategy_attitudes=ATTITUDES)
    patient.reset(PROFILES["anxiety-priya"], 1, random.Random(0))
    turns = [patient.step(SUPPORT) for _ in range(5)]
    assert turns[0].text == "I keep worrying about my heart, honestly."
    assert turns[0].usage is not None and turns[0].usage.role == "patient"
    assert turns[1].usage is not None and turns[1].usage.fallback  # empty answer replaced
    assert not wants_to_end(turns[2].text)  # a premature goodbye is replaced
    assert turns[4].wants_to_end and wants_to_end(turns[4].text)
    system = backend.calls_for("patient")[0].messages[0]["content"]
    assert "Priya" in system and PROFILES["anxiety-priya"].guidance[0] in system
    answers = {
        "phq9": 7,
        "gad7": 12,
        "comment": "Helpful.",
        "alliance": {"goal": 4, "task": 4, "bond": 5, "understood": 4},
    }
    backend.push("patient", answers)
    q = patient.end_session(SessionInfo(session_no=1, therapies=["cbt"]))
    assert q.source == "model" and q.phq9 == 7
    backend.push("patient", "not json", "still not json", "nope")
    patient.reset(PROFILES["anxiety-priya"], 2, random.Random(0))
    q2 = patient.end_session(SessionInfo(session_no=2, therapies=["cbt"]))
    assert q2.source == "latent"
