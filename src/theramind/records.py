"""Typed records that the agents produce and the framework stores.

Model-facing schemas (what a model is asked to fill in) narrow the free `str` fields here to the
labels of the loaded taxonomy; see `theramind.agents.schemas`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from theramind.strict import Strict
from theramind.text_checks import text_problem

Attitude = Literal["positive", "negative"]
RiskLevel = Literal["none", "low", "moderate", "high"]
RISK_LEVELS: tuple[RiskLevel, ...] = ("none", "low", "moderate", "high")
"""The risk levels, lowest first."""
RISK_ORDER: dict[str, int] = {level: rank for rank, level in enumerate(RISK_LEVELS)}
"""Ordering of risk levels; `moderate` and above are *elevated* and trigger the crisis protocol."""

EfficacyVerdict = Literal["effective", "partially_effective", "not_effective"]
TherapyAction = Literal["start", "keep", "adjust", "switch"]
Severity = Literal["minimal", "mild", "moderate", "severe"]
MemoryKind = Literal["disclosure", "summary", "decision", "formulation", "risk", "intake"]


def utcnow() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


def is_elevated(level: str) -> bool:
    """Return whether a risk level calls for the crisis protocol."""
    return RISK_ORDER.get(level, 0) >= RISK_ORDER["moderate"]


def max_risk(*levels: str) -> RiskLevel:
    """Return the highest of several risk levels."""
    return RISK_LEVELS[max((RISK_ORDER.get(level, 0) for level in levels), default=0)]


class Perception(Strict):
    """How the patient presents in their latest message, as the diagnostician perceives it."""

    emotion: str = Field(description="The patient's primary emotion, one of the allowed labels.")
    intensity: float = Field(ge=0.0, le=1.0, description="Intensity of that emotion, 0 to 1.")
    attitude: Attitude = Field(
        description="positive: open, reflective, accepting; negative: denying, blaming, "
        "withdrawn, confused or resisting."
    )
    resistance: bool = Field(
        description="True if the patient rejects advice, is impatient or refuses to go on."
    )
    topic_deviation: bool = Field(
        description="True if the patient switches to an unrelated new topic."
    )
    wants_to_end: bool = Field(
        description="True only if the patient clearly wants to end this session now."
    )
    risk_level: RiskLevel = Field(
        description="Risk of harm to self or others: none, low, moderate (thoughts of death or "
        "self-harm), high (intent, plan, means or recent attempt)."
    )
    risk_evidence: str = Field(
        default="", max_length=300, description="The patient's words that show the risk, if any."
    )


class StrategyChoice(Strict):
    """The one response strategy chosen for the next counselor reply."""

    strategy: str = Field(description="Exactly one strategy id from the allowed list.")
    rationale: str = Field(max_length=300, description="One sentence: why this strategy now.")
    focus: str = Field(
        default="", max_length=200, description="What the reply should focus on, in a few words."
    )


class EfficacyReport(Strict):
    """Whether the therapy applied in the session helped the patient."""

    verdict: EfficacyVerdict = Field(
        description="effective, partially_effective or not_effective, judged from the signals."
    )
    reason: str = Field(max_length=400, description="One or two sentences naming the evidence.")
    signals: dict[str, float] = Field(
        default_factory=dict, description="Measured signals (filled in by the framework)."
    )


class TherapyDecision(Strict):
    """The therapy for the next session and the treatment phase, with the reason."""

    action: TherapyAction = Field(
        description="start (first session only), keep the current therapy, adjust it (add or drop "
        "one approach), or switch to another."
    )
    therapies: list[str] = Field(
        min_length=1, max_length=2, description="One or two therapy ids from the catalog."
    )
    phase: str = Field(description="The treatment phase for the next session, one allowed id.")
    reason: str = Field(max_length=400, description="Why, in one or two sentences.")
    evidence: list[str] = Field(
        default_factory=list, max_length=4, description="Short observations the decision rests on."
    )


class SymptomCriterion(Strict):
    """A symptom mapped to the diagnostic criterion it may meet."""

    symptom: str = Field(max_length=120, description="The symptom in plain words.")
    criterion: str = Field(
        max_length=160, description="The DSM-5 or ICD-11 criterion considered, e.g. 'DSM-5 MDD A1'."
    )


class Formulation(Strict):
    """The working case formulation. It guides the counselor; never stated to the patient."""

    presenting_problems: list[str] = Field(default_factory=list, max_length=5)
    symptoms: list[SymptomCriterion] = Field(default_factory=list, max_length=6)
    considered: list[str] = Field(
        default_factory=list,
        max_length=3,
        description="DSM-5 / ICD-11 conditions considered (hypotheses, not diagnoses).",
    )
    maintaining_factors: list[str] = Field(default_factory=list, max_length=5)
    strengths: list[str] = Field(default_factory=list, max_length=5)
    severity: Severity = Field(default="mild")

    def sections(self, *, criteria: bool = True) -> list[tuple[str, list[str]]]:
        """The formulation's lists in their one order, each under its label key.

        Keys: problems, symptoms, considered, maintaining, strengths (the `labels` group of
        the prompts names them). A symptom shows its criterion when `criteria` is set.
        """
        symptoms = [
            f"{s.symptom} ({s.criterion})" if criteria else s.symptom for s in self.symptoms
        ]
        return [
            ("problems", self.presenting_problems),
            ("symptoms", symptoms),
            ("considered", self.considered),
            ("maintaining", self.maintaining_factors),
            ("strengths", self.strengths),
        ]


class SalientItem(Strict):
    """A fact worth remembering across sessions."""

    kind: Literal["event", "person", "belief", "goal", "homework"] = Field(
        description="What sort of fact this is."
    )
    text: str = Field(max_length=200, description="The fact in one short sentence.")


class SessionSummary(Strict):
    """What happened in the session and what the next one should address.

    The shortest required field comes first, then the summary, and the open-ended list last:
    a model that runs out of tokens inside the summary has already written the next focus,
    and the cut summary can be repaired.
    """

    next_focus: str = Field(max_length=200, description="What the next session should address.")
    summary: str = Field(max_length=600, description="Three sentences at most.")
    homework: str = Field(default="", max_length=200, description="Agreed task, if any.")
    salient: list[SalientItem] = Field(
        default_factory=list, max_length=5, description="Facts the patient disclosed."
    )


class LayerVerdict(Strict):
    """One layer's verdict on a message: patterns, the semantic classifier or the diagnostician."""

    layer: Literal["patterns", "semantic", "diagnostician"]
    level: RiskLevel = "none"
    categories: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    available: bool = True
    note: str = ""


class RiskScreen(Strict):
    """The risk screen's verdict on one patient message: the highest of its layers.

    `layers` holds each layer's own verdict and evidence, so a reader can see why a message
    escalated; records written before the layers existed load with it empty.
    """

    level: RiskLevel = "none"
    categories: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    language: str = ""
    layers: list[LayerVerdict] = Field(default_factory=list)

    def layer(self, name: str) -> LayerVerdict | None:
        """Return the verdict of the named layer, if it ran."""
        return next((v for v in self.layers if v.layer == name), None)


class MemoryItem(Strict):
    """One recalled memory with its similarity and the score recall ranked it by."""

    id: str
    patient_id: str
    kind: MemoryKind
    text: str
    session_no: int
    turn: int | None = None
    created_at: datetime
    similarity: float = 0.0
    score: float = 0.0


class CallUsage(Strict):
    """One model call: which agent, its cost, and whether a fallback replaced its output."""

    role: str
    agent: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 1
    fallback: bool = False
    error: str | None = None


class CallTotals:
    """The token totals of a record's model calls (a mixin of records with a `calls` list)."""

    if TYPE_CHECKING:
        calls: list[CallUsage]

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens of the record's model calls."""
        return sum(c.prompt_tokens for c in self.calls)

    @property
    def completion_tokens(self) -> int:
        """Completion tokens of the record's model calls."""
        return sum(c.completion_tokens for c in self.calls)


class Quoted(Protocol):
    """An earlier turn as a prompt quotes it (an `Exchange` or a whole `TurnRecord`)."""

    @property
    def patient_text(self) -> str:
        """What the patient said."""
        ...

    @property
    def reply(self) -> str:
        """What the counselor answered."""
        ...


class Exchange(BaseModel):
    """What a prompt quotes of an earlier turn: the patient's words and the reply.

    A session's recent turns are read back from its thread every turn; validating these two
    fields instead of the whole `TurnRecord` (perception, screen, calls, memories) spares most
    of that work. Other fields of a stored turn are ignored here, not refused.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    patient_text: str
    reply: str


class TurnRecord(Strict, CallTotals):
    """Everything about one counselor turn."""

    patient_id: str
    session_no: int
    turn: int
    patient_text: str
    reply: str
    reasoning: str = ""
    perception: Perception
    strategy: str
    strategy_rationale: str = ""
    therapies: list[str]
    phase: str
    risk_level: RiskLevel = "none"
    risk_screen: RiskScreen = Field(default_factory=RiskScreen)
    crisis: bool = False
    closing: bool = False
    injection: bool = Field(
        default=False, description="Whether the injection guard flagged the patient's message."
    )
    language: str = Field(default="en", description="The language of the prompts used.")
    recalled: list[MemoryItem] = Field(default_factory=list)
    calls: list[CallUsage] = Field(default_factory=list)
    fallbacks: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)


class SessionOutcome(Strict):
    """What the cross-session loop concluded when a session closed."""

    patient_id: str
    session_no: int
    efficacy: EfficacyReport
    decision: TherapyDecision
    formulation: Formulation
    summary: SessionSummary
    previous_therapies: list[str]
    calls: list[CallUsage] = Field(default_factory=list)
    fallbacks: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)


class RiskEvent(Strict):
    """An elevated-risk turn, recorded for follow-up."""

    patient_id: str
    session_no: int
    turn: int
    level: RiskLevel
    source: Literal["screen", "diagnostician", "both"]
    categories: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)


class PatientProfile(Strict):
    """What the counselor knows about a patient at intake (every text field bounded)."""

    patient_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    pseudonym: str = Field(default="", max_length=80)
    age: int | None = Field(default=None, ge=5, le=120)
    history: str = Field(default="", max_length=4000)
    presenting_problem: str = Field(default="", max_length=4000)
    category: str = Field(default="", max_length=80)
    language: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2,3}$",
        description="BCP-47 primary language code ('en', 'zh', 'es', 'id'); when None it is "
        "detected from the intake or the first message and stored.",
    )

    @field_validator("pseudonym", "history", "presenting_problem", "category")
    @classmethod
    def _storable(cls, value: str) -> str:
        problem = text_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class SessionPlan(Strict):
    """What a session starts from: therapy, phase, focus and anything to check in on."""

    patient_id: str
    session_no: int = Field(ge=1)
    pseudonym: str = ""
    presenting_problem: str = ""
    language: str = Field(default="en", description="The language the session is held in.")
    language_source: Literal["profile", "intake", "message", "default"] = Field(
        default="profile",
        description="Where the language came from: the profile, a guess from the intake or the "
        "first message, or the default while nothing has told yet.",
    )
    therapies: list[str] = Field(min_length=1, max_length=2)
    phase: str
    last_action: TherapyAction | None = Field(
        default=None, description="The decision that set `therapies` (start before session 1)."
    )
    previous_therapies: list[str] = Field(
        default_factory=list, description="The therapies of the session before, if any."
    )
    focus: str = ""
    formulation: Formulation | None = None
    open_risk: RiskEvent | None = None
    opening: str = ""
    opening_calls: list[CallUsage] = Field(
        default_factory=list, description="Model calls made to plan the session (intake)."
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_retired(cls, data: Any) -> Any:
        """Accept plans stored before `previous_summary` (never read) was retired."""
        if isinstance(data, dict) and "previous_summary" in data:
            data = {k: v for k, v in data.items() if k != "previous_summary"}
        return data
