"""The simulated patient's base: attitude dynamics, gradual disclosure, closing, latent updates.

Subclasses only say things (`_say`) and answer questionnaires (`_questionnaire`); the behaviour
that must not depend on the model (when to be negative, what to reveal, when to leave, how
the hidden state moves) lives here.
"""

from __future__ import annotations

import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from theramind.errors import SessionStateError
from theramind.records import Attitude, CallUsage
from theramind.simulation.latent import (
    LatentState,
    Questionnaire,
    SessionInfo,
    reply_fit,
    understood_fraction,
    update_latent,
)
from theramind.simulation.profiles import Disclosure, SimProfile
from theramind.strict import Strict

log = logging.getLogger(__name__)

AttitudeKind = Literal[
    "expressing_emotion",
    "introspection",
    "insight",
    "acceptance",
    "action",
    "denial",
    "blaming_others",
    "withdrawal",
    "confusion",
    "resistance",
]
KINDS: dict[str, tuple[AttitudeKind, ...]] = {
    "positive": ("expressing_emotion", "introspection", "insight", "acceptance", "action"),
    "negative": ("denial", "blaming_others", "withdrawal", "confusion", "resistance"),
}
_STYLE_KIND_WEIGHTS: dict[str, dict[str, float]] = {
    "upset": {"expressing_emotion": 3, "blaming_others": 3, "resistance": 2},
    "reserved": {"withdrawal": 3, "denial": 2, "introspection": 2},
    "pleasing": {"acceptance": 3, "action": 2, "confusion": 2},
    "tangent": {"confusion": 3, "introspection": 2},
    "verbose": {"introspection": 3, "expressing_emotion": 2},
}
_OPENING_KINDS: dict[str, AttitudeKind] = {
    "positive": "expressing_emotion",
    "negative": "withdrawal",
}


@dataclass(frozen=True)
class Cue:
    """What one round's utterance answers, and how: the patient's state drawn for the round."""

    counselor_text: str
    attitude: Attitude
    kind: AttitudeKind
    fact: Disclosure | None
    closing: bool


class PatientSettings(Strict):
    """How simulated patients behave (reference protocol defaults)."""

    positive_rate: float = Field(
        default=0.7, ge=0.05, le=0.95, description="Long-run share of positive-attitude turns."
    )
    persistence: float | None = Field(
        default=None,
        ge=0.0,
        le=0.95,
        description="Chance a negative attitude stays negative next turn (None: the profile's).",
    )
    close_after: tuple[int, int] = Field(
        default=(4, 5), description="The patient says goodbye at a round drawn from this range."
    )
    max_words: int = Field(default=60, ge=10, le=200)
    questionnaire: Literal["model", "latent"] = Field(
        default="model",
        description="Who fills in the post-session questionnaire for a model-played patient: "
        "the model, in character (latent state as fallback), or the latent state directly.",
    )

    @model_validator(mode="after")
    def _range(self) -> PatientSettings:
        lo, hi = self.close_after
        if not 1 <= lo <= hi:
            raise ValueError("close_after must be [low, high] with 1 <= low <= high")
        return self


class PatientTurn(Strict):
    """One patient utterance and the hidden reasons behind it."""

    round: int = Field(ge=1)
    text: str
    attitude: Attitude
    kind: AttitudeKind
    wants_to_end: bool = False
    disclosed: list[int] = Field(default_factory=list, description="Facts revealed this turn.")
    disclosure_stage: int = Field(default=0, description="Facts revealed so far in treatment.")
    usage: CallUsage | None = None


class SimulatedPatient(ABC):
    """A patient for simulated counseling: `reset` per session, `step` per counselor message."""

    def __init__(
        self,
        settings: PatientSettings | None = None,
        *,
        strategy_attitudes: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings or PatientSettings()
        self.strategy_attitudes = dict(strategy_attitudes or {})
        self.profile: SimProfile | None = None
        self.latent: LatentState | None = None
        self.start_state: LatentState | None = None
        self.session_no = 0
        self.round = 0
        self.rng = random.Random(0)
        self.history: list[tuple[str, str]] = []
        self._attitude: Attitude | None = None
        self._fit = 1.0
        self._close_round = self.settings.close_after[1]

    # -- lifecycle --------------------------------------------------------------------------------

    def restore(self, profile: SimProfile, latent: LatentState | None) -> None:
        """Load a profile and its latent state (for a resumed run); None starts afresh."""
        self.profile = profile
        self.start_state = LatentState.start(profile)
        self.latent = latent.model_copy(deep=True) if latent else self.start_state.model_copy()

    def reset(self, profile: SimProfile, session_no: int, rng: random.Random) -> None:
        """Begin a session: fresh rounds and attitude; the latent state carries over."""
        if self.profile is None or self.profile.id != profile.id or self.latent is None:
            self.restore(profile, None)
        self.profile = profile
        self.session_no = session_no
        self.rng = rng
        self.round = 0
        self.history = []
        self._attitude = None
        self._fit = 1.0
        lo, hi = self.settings.close_after
        self._close_round = rng.randint(lo, hi)

    def step(self, counselor_text: str) -> PatientTurn:
        """Answer the counselor's message."""
        profile, latent = self._ready()
        self.round += 1
        if self._attitude is not None:
            self._fit = reply_fit(counselor_text, self._attitude)
        attitude = self._next_attitude(profile, latent)
        kind = self._kind(attitude, profile.style)
        closing = self.round >= self._close_round
        fact = None if closing else self._disclosure(attitude, kind, profile, latent)
        text, usage = self._say(Cue(counselor_text, attitude, kind, fact, closing))
        disclosed: list[int] = []
        if fact is not None:
            disclosed = [profile.disclosures.index(fact)]
            latent.disclosed = sorted({*latent.disclosed, *disclosed})
        self._attitude = attitude
        self.history.append((counselor_text, text))
        return PatientTurn(
            round=self.round,
            text=text,
            attitude=attitude,
            kind=kind,
            wants_to_end=closing,
            disclosed=disclosed,
            disclosure_stage=len(latent.disclosed),
            usage=usage,
        )

    def end_session(self, session_info: SessionInfo) -> Questionnaire:
        """Take the session in: move the latent state, then answer the questionnaire."""
        profile, latent = self._ready()
        understood = understood_fraction(session_info.turns, self.strategy_attitudes)
        self.latent = update_latent(latent, profile, session_info, understood, self.rng)
        return self._questionnaire(session_info)

    def close(self) -> None:  # noqa: B027 - optional hook, most patients hold nothing
        """Release resources (models); the default has none."""

    # -- behaviour --------------------------------------------------------------------------------

    def _ready(self) -> tuple[SimProfile, LatentState]:
        if self.profile is None or self.latent is None:
            raise SessionStateError(
                "call reset(profile, session_no, rng) before step or end_session"
            )
        return self.profile, self.latent

    def baseline(self) -> LatentState:
        """Return the latent state treatment started from."""
        profile, _ = self._ready()
        if self.start_state is None:
            self.start_state = LatentState.start(profile)
        return self.start_state

    def positive_rate(self, latent: LatentState) -> float:
        """Return this patient's long-run positive share now (alliance and mood shift it)."""
        base = self.settings.positive_rate
        rate = base + 0.3 * (latent.alliance - 0.5) - 0.1 * (latent.phq9 / 27 - 0.5)
        return max(0.05, min(0.95, rate))

    def _next_attitude(self, profile: SimProfile, latent: LatentState) -> Attitude:
        """Sample the attitude: a Markov chain whose stationary share is `positive_rate`."""
        p_pos = self.positive_rate(latent)
        stay = self.settings.persistence
        stay = profile.resistance if stay is None else stay
        misfit = 1.0 - self._fit
        if self._attitude is None:
            negative = self.rng.random() >= p_pos
        elif self._attitude == "negative":
            negative = self.rng.random() < min(0.95, stay + 0.25 * misfit)
        else:
            to_neg = (1 - p_pos) * (1 - stay) / p_pos
            negative = self.rng.random() < min(0.95, to_neg + 0.15 * misfit)
        return "negative" if negative else "positive"

    def _kind(self, attitude: Attitude, style: str) -> AttitudeKind:
        if self.round == 1:
            return _OPENING_KINDS[attitude]
        kinds = KINDS[attitude]
        weights = _STYLE_KIND_WEIGHTS.get(style, {})
        return self.rng.choices(kinds, weights=[weights.get(k, 1.0) for k in kinds])[0]

    def _disclosure(
        self, attitude: Attitude, kind: str, profile: SimProfile, latent: LatentState
    ) -> Disclosure | None:
        """Reveal at most one ready fact, and only on an open (positive) turn."""
        if attitude != "positive" or self.round == 1:
            return None
        for i, fact in enumerate(profile.disclosures):
            if i in latent.disclosed or fact.session > self.session_no:
                continue
            if fact.session == self.session_no and self.round < fact.after_round:
                continue
            if latent.alliance < fact.trust:
                continue
            eager = kind in ("expressing_emotion", "introspection", "insight")
            if eager or self.rng.random() < 0.4:
                return fact
            return None
        return None

    @abstractmethod
    def _say(self, cue: Cue) -> tuple[str, CallUsage | None]:
        """Write the utterance; return it and the model call's usage, if any."""

    @abstractmethod
    def _questionnaire(self, info: SessionInfo) -> Questionnaire:
        """Answer the post-session questionnaire (after the latent state moved)."""
