"""Counselors under test behind one protocol: TheraMind and its ablations.

Baselines that are not TheraMind live in `theramind.simulation.baselines`.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from theramind.api import Session, TheraMind
from theramind.config import Settings
from theramind.errors import SessionStateError
from theramind.llm import BaseBackend
from theramind.planning import write_opening
from theramind.records import (
    CallTotals,
    CallUsage,
    PatientProfile,
    Perception,
    RiskLevel,
    SessionOutcome,
    SessionPlan,
    TherapyDecision,
)
from theramind.services import build_services
from theramind.strict import Strict

log = logging.getLogger(__name__)


class RecalledRef(Strict):
    """A recalled memory as recorded in a run (no ids or timestamps, so runs compare)."""

    kind: str
    session_no: int
    text: str
    score: float


class CounselorTurn(Strict, CallTotals):
    """One counselor reply and the typed decisions behind it (empty where a baseline has none)."""

    reply: str
    closing: bool = False
    strategy: str | None = None
    therapies: list[str] = Field(default_factory=list)
    phase: str | None = None
    perception: Perception | None = None
    risk_level: RiskLevel = "none"
    crisis: bool = False
    recalled: list[RecalledRef] = Field(default_factory=list)
    fallbacks: list[str] = Field(default_factory=list)
    calls: list[CallUsage] = Field(default_factory=list)
    latency_s: float = 0.0


class Exchange(Strict):
    """One round of a finished session: what the patient said and the counselor's answer."""

    patient: str
    counselor: str


class PastSession(Strict):
    """A completed session, as a resumed run hands it back to a counselor."""

    session_no: int
    opening: str = ""
    exchanges: list[Exchange] = Field(default_factory=list)
    therapies: list[str] = Field(default_factory=list)
    close: dict[str, Any] | None = None


class Counselor(ABC):
    """A counselor under test: opens a session, answers each patient message, closes."""

    kind: ClassVar[str] = "counselor"

    @abstractmethod
    def open_session(self, patient_id: str, profile: PatientProfile) -> str:
        """Start the patient's next session; return the opening words."""

    @abstractmethod
    def respond(self, text: str) -> CounselorTurn:
        """Answer the patient's message."""

    @abstractmethod
    def close_session(self) -> dict[str, Any] | None:
        """End the session; return what the counselor concluded (None if nothing)."""

    def opening_calls(self) -> list[CallUsage]:
        """Return the model calls the last `open_session` made (none by default)."""
        return []

    @abstractmethod
    def rewind(
        self, patient_id: str, profile: PatientProfile, history: Sequence[PastSession]
    ) -> None:
        """Return to the state just after the completed sessions in `history` (for resuming)."""

    @abstractmethod
    def model_ids(self) -> dict[str, str]:
        """Return the model serving each role this counselor uses."""

    @abstractmethod
    def close(self) -> None:
        """Release models and stores."""


def recalled_refs(items: Sequence[Any]) -> list[RecalledRef]:
    """Record recalled memories without their volatile ids and timestamps."""
    return [
        RecalledRef(kind=m.kind, session_no=m.session_no, text=m.text, score=round(m.score, 4))
        for m in items
    ]


class FixedTherapyMind(TheraMind):
    """TheraMind whose therapy never changes after session 1 (no cross-session adaptation)."""

    def next_plan(self, profile: PatientProfile) -> SessionPlan:
        """Plan as TheraMind does, then put back the therapy of session 1."""
        plan = super().next_plan(profile)
        if plan.session_no > 1:
            first = self.services.store.plan(profile.patient_id, 1)
            if plan.therapies != first.therapies or plan.last_action != "keep":
                plan.therapies = list(first.therapies)
                plan.last_action = "keep"  # the decision applied, whatever was proposed
                plan.opening = write_opening(self.services, plan, profile)
        return plan

    def applied_decision(self, outcome: SessionOutcome) -> TherapyDecision:
        """Return the decision as this ablation applies it: the first session's therapy, kept."""
        first = self.services.store.plan(outcome.patient_id, 1).therapies
        decision = outcome.decision
        if set(first) == set(decision.therapies):
            return decision
        return decision.model_copy(update={"action": "keep", "therapies": list(first)})


class TheraMindCounselor(Counselor):
    """The TheraMind framework behind the counselor protocol."""

    kind = "theramind"

    def __init__(self, app: TheraMind) -> None:
        self.app = app
        self.session: Session | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        backends: Mapping[str, BaseBackend] | None = None,
        use_memory: bool = True,
        fixed_therapy: bool = False,
    ) -> TheraMindCounselor:
        """Build a counselor over its own storage home (`settings.storage.home`)."""
        services = build_services(settings, backends=backends, use_memory=use_memory)
        app_class = FixedTherapyMind if fixed_therapy else TheraMind
        return cls(app_class(services))

    def open_session(self, patient_id: str, profile: PatientProfile) -> str:
        """Start (or resume) the patient's next session."""
        self.session = self.app.start_session(patient_id, profile=profile)
        return self.session.opening

    def opening_calls(self) -> list[CallUsage]:
        """Return the calls made to plan the session just opened (none when it was resumed)."""
        if self.session is None or self.session.resumed:
            return []
        return list(self.session.plan.opening_calls)

    def _session(self) -> Session:
        if self.session is None:
            raise SessionStateError("open_session must be called first")
        return self.session

    def respond(self, text: str) -> CounselorTurn:
        """Run one TheraMind turn."""
        started = time.perf_counter()
        record = self._session().respond(text).record
        return CounselorTurn(
            reply=record.reply,
            closing=record.closing,
            strategy=record.strategy,
            therapies=list(record.therapies),
            phase=record.phase,
            perception=record.perception,
            risk_level=record.risk_level,
            crisis=record.crisis,
            recalled=recalled_refs(record.recalled),
            fallbacks=list(record.fallbacks),
            calls=list(record.calls),
            latency_s=round(time.perf_counter() - started, 4),
        )

    def close_session(self) -> dict[str, Any] | None:
        """Run the cross-session loop; return the outcome (efficacy, decision, summary).

        `decision` is what the counselor proposed; `applied` (action and therapies) is what the
        next session will use, which an ablation may override.
        """
        session = self._session()
        self.session = None
        outcome = session.end()
        close = outcome.model_dump(mode="json")
        applied = (
            self.app.applied_decision(outcome)
            if isinstance(self.app, FixedTherapyMind)
            else outcome.decision
        )
        close["applied"] = {"action": applied.action, "therapies": list(applied.therapies)}
        return close

    def rewind(
        self, patient_id: str, profile: PatientProfile, history: Sequence[PastSession]
    ) -> None:
        """Erase whatever the store holds beyond the completed sessions."""
        self.session = None
        if self.app.services.store.has_patient(patient_id):
            self.app.discard_sessions(patient_id, len(history) + 1)

    def model_ids(self) -> dict[str, str]:
        """Return the counselor role's model."""
        return {"counselor": self.app.services.router.model_id("counselor")}

    def close(self) -> None:
        """Close the app (stores, models, checkpointer)."""
        self.app.close()
