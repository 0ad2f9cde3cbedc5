"""The patient's hidden state, how a session moves it, and the self-report derived from it.

The counselor never sees any of this. Between sessions the symptom scores move by how well the
therapy used suits the patient (their hidden responsiveness) and how understood they felt
(the share of turns where the counselor's strategy fitted their attitude).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field

from theramind.records import Attitude
from theramind.simulation.profiles import SimProfile
from theramind.strict import Strict

COMMON_FACTOR = 0.35
"""Responsiveness assumed when no catalog therapy was used (generic supportive talk)."""
GAIN = 0.3
THRESHOLD = 0.3
"""A session helps when its effect exceeds this; below it symptoms drift up a little."""
SAFE_STRATEGIES = frozenset({"crisis_protocol"})

_CHALLENGE = re.compile(
    r"\b(what if|try|could you|would you|another way|notice|consider|pattern|experiment|"
    r"next step|i wonder|instead|small step|plan|practice|practise|what would happen)\b",
    re.IGNORECASE,
)
_SUPPORT = re.compile(
    r"\b(sounds|i hear|understand|makes sense|must be|thank you|that's hard|it's okay|"
    r"feel(?:ing|s)?|so much|difficult|painful|tell me more|go on)\b",
    re.IGNORECASE,
)


class LatentState(Strict):
    """The hidden truth about a patient between sessions."""

    phq9: float = Field(ge=0.0, le=27.0, description="Depression severity, PHQ-9-like.")
    gad7: float = Field(ge=0.0, le=21.0, description="Anxiety severity, GAD-7-like.")
    alliance: float = Field(ge=0.0, le=1.0, description="Trust in the counselor, 0 to 1.")
    disclosed: list[int] = Field(default_factory=list, description="Facts revealed so far.")
    sessions: int = Field(default=0, ge=0, description="Sessions completed.")
    last_effect: float | None = Field(default=None, description="Last session's effect, 0 to 1.")
    last_understood: float | None = Field(default=None, description="Last session's fit, 0 to 1.")

    @classmethod
    def start(cls, profile: SimProfile) -> LatentState:
        """Return the state a profile starts from."""
        return cls(
            phq9=float(profile.latent.phq9),
            gad7=float(profile.latent.gad7),
            alliance=profile.latent.alliance,
        )


class TurnSignal(Strict):
    """One round as the patient lived it: their attitude and what the counselor did."""

    attitude: Attitude
    strategy: str | None = None
    reply: str = ""


class SessionInfo(Strict):
    """What the patient takes away from a session when it ends."""

    session_no: int = Field(ge=1)
    therapies: list[str] = Field(default_factory=list)
    turns: list[TurnSignal] = Field(default_factory=list)
    end_reason: str = "patient_closed"


class AllianceItems(Strict):
    """Working-alliance items (WAI-SR-like), 1 = never ... 5 = always."""

    goal: int = Field(ge=1, le=5, description="We agree on what is important for me to work on.")
    task: int = Field(ge=1, le=5, description="I believe the way we are working will help.")
    bond: int = Field(
        ge=1, le=5, description="I feel the counselor appreciates and cares about me."
    )
    understood: int = Field(ge=1, le=5, description="I felt understood in this session.")


class QuestionnaireAnswer(Strict):
    """The patient's own answers after a session, in character."""

    phq9: int = Field(ge=0, le=27, description="Depression symptoms over the last two weeks, 0-27.")
    gad7: int = Field(ge=0, le=21, description="Anxiety symptoms over the last two weeks, 0-21.")
    alliance: AllianceItems
    comment: str = Field(default="", max_length=240, description="One sentence about the session.")


class Questionnaire(QuestionnaireAnswer):
    """A recorded questionnaire: the answers and whether a model or the latent state wrote them."""

    source: Literal["model", "latent"] = "latent"


def reply_fit(reply: str, attitude: Attitude) -> float:
    """Judge from the text alone whether a reply suited the attitude (1 fits, 0 does not)."""
    challenge = len(_CHALLENGE.findall(reply))
    support = len(_SUPPORT.findall(reply))
    if challenge == support:
        return 0.5
    challenging = challenge > support
    if attitude == "negative":
        return 0.0 if challenging else 1.0
    return 1.0 if challenging else 0.6


def understood_fraction(
    turns: Sequence[TurnSignal], strategy_attitudes: Mapping[str, str]
) -> float:
    """Share of rounds whose strategy fitted the attitude (a text proxy when untyped)."""
    if not turns:
        return 0.5
    scores = []
    for t in turns:
        if t.strategy in SAFE_STRATEGIES:
            scores.append(1.0)
        elif t.strategy is not None and t.strategy in strategy_attitudes:
            scores.append(1.0 if strategy_attitudes[t.strategy] == t.attitude else 0.0)
        else:
            scores.append(reply_fit(t.reply, t.attitude))
    return sum(scores) / len(scores)


def therapy_response(profile: SimProfile, therapies: Sequence[str]) -> float:
    """Return how much the therapies used suit the patient (the best of them)."""
    known = [profile.responsiveness[t] for t in therapies if t in profile.responsiveness]
    return max(known) if known else COMMON_FACTOR


def _clamp(value: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, value))


def update_latent(
    state: LatentState,
    profile: SimProfile,
    info: SessionInfo,
    understood: float,
    rng: random.Random,
) -> LatentState:
    """Move the latent state after a session; deterministic given `rng`."""
    response = therapy_response(profile, info.therapies)
    dose = min(1.0, len(info.turns) / 3)
    effect = response * (0.4 + 0.6 * understood) * dose
    gain = GAIN * (effect - THRESHOLD)
    phq = _clamp(state.phq9 * (1 - gain) + rng.gauss(0.0, 0.3), 0.0, 27.0)
    gad = _clamp(state.gad7 * (1 - 0.8 * gain) + rng.gauss(0.0, 0.25), 0.0, 21.0)
    alliance = _clamp(state.alliance + 0.3 * (understood - 0.5) + 0.15 * (effect - THRESHOLD), 0, 1)
    return state.model_copy(
        update={
            "phq9": round(phq, 3),
            "gad7": round(gad, 3),
            "alliance": round(alliance, 3),
            "sessions": state.sessions + 1,
            "last_effect": round(effect, 3),
            "last_understood": round(understood, 3),
        }
    )


_STYLE_BIAS: dict[str, tuple[float, float]] = {
    "pleasing": (-1.5, 0.6),
    "upset": (1.5, -0.6),
    "reserved": (-0.5, -0.2),
}
_COMMENTS = (
    (0.7, "That helped, I felt listened to today."),
    (0.45, "It was okay, some of it made sense to me."),
    (0.0, "I'm not sure this is going anywhere yet."),
)


def self_report(state: LatentState, style: str, rng: random.Random) -> Questionnaire:
    """Answer the questionnaire from the latent state, with the style's reporting bias."""
    symptom_bias, alliance_bias = _STYLE_BIAS.get(style, (0.0, 0.0))
    phq = round(_clamp(state.phq9 + symptom_bias + rng.gauss(0, 1.0), 0, 27))
    gad = round(_clamp(state.gad7 + symptom_bias + rng.gauss(0, 0.8), 0, 21))
    base = 1 + 4 * state.alliance + alliance_bias
    understood = state.last_understood if state.last_understood is not None else state.alliance

    def item(center: float) -> int:
        return round(_clamp(center + rng.gauss(0, 0.4), 1, 5))

    comment = next(text for floor, text in _COMMENTS if state.alliance >= floor)
    return Questionnaire(
        phq9=phq,
        gad7=gad,
        alliance=AllianceItems(
            goal=item(base),
            task=item(base - 0.2),
            bond=item(base + 0.2),
            understood=item(1 + 4 * understood + alliance_bias),
        ),
        comment=comment,
        source="latent",
    )


_MOOD = {
    "first": "This is your first session; you are unsure what to expect.",
    "much_better": "You feel noticeably better than when you started.",
    "better": "You feel a little better than when you started.",
    "same": "You feel about the same as when you started.",
    "worse": "You feel worse than when you started and are losing hope in counseling.",
}


def mood_words(
    state: LatentState, start: LatentState, texts: Mapping[str, str] | None = None
) -> str:
    """Describe, in the patient's words, how they feel compared with the start of treatment.

    `texts` gives the five phrasings in another language (keys as in `_MOOD`).
    """
    delta = (start.phq9 + start.gad7) - (state.phq9 + state.gad7)
    if state.sessions == 0:
        key = "first"
    elif delta > 4:
        key = "much_better"
    elif delta > 1:
        key = "better"
    elif delta > -1:
        key = "same"
    else:
        key = "worse"
    return (texts or {}).get(key, _MOOD[key])
