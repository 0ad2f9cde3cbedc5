"""Counselors under test behind one protocol: TheraMind and its ablations.

Baselines that are not TheraMind live in `theramind.simulation.baselines`.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from theramind.api import Session, TheraMind, opening_line
from theramind.config import Settings
from theramind.llm import BaseBackend
from theramind.records import CallUsage, PatientProfile, Perception, RiskLevel, SessionPlan
from theramind.services import build_services

log = logging.getLogger(__name__)


class Strict(BaseModel):
    """Base: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class RecalledRef(Strict):
    """A recalled memory as recorded in a run (no ids or timestamps, so runs compare)."""

    kind: str
    session_no: int
    text: str
    score: float


class CounselorTurn(Strict):
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

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens of this turn's model calls."""
        return sum(c.prompt_tokens for c in self.calls)

    @property
    def completion_tokens(self) -> int:
        """Completion tokens of this turn's model calls."""
        return sum(c.completion_tokens for c in self.calls)


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


def discard_sessions(app: TheraMind, patient_id: str, first: int) -> int:
    """Erase a patient's sessions from number `first` on: records, checkpoints and memories.

    Returns how many sessions were erased. Used to redo a half-done session cleanly.
    """
    store = app.services.store
    if not store.has_patient(patient_id):
        return 0
    last = store.last_session_no(patient_id)
    if last < first:
        return 0
    with store.transaction() as db:
        for table in ("turns", "risk_events", "sessions"):
            db.execute(
                f"DELETE FROM {table} WHERE patient_id = ? AND session_no >= ?", (patient_id, first)
            )
        db.execute(
            "UPDATE risk_events SET followed_up = 0 WHERE patient_id = ? AND session_no >= ?",
            (patient_id, first - 1),
        )
    saver = app.session_graph.checkpointer
    delete_thread = getattr(saver, "delete_thread", None)
    for no in range(first, last + 1):
        for thread in (f"{patient_id}:{no}", f"{patient_id}:{no}:close"):
            if delete_thread is not None:
                delete_thread(thread)
    memory = app.services.memory
    if memory is not None:
        memory.flush()
        where = {"$and": [{"patient_id": {"$eq": patient_id}}, {"session_no": {"$gte": first}}]}
        memory.index.delete(patient_id, where)
    log.info("discarded sessions %d..%d of %s", first, last, patient_id)
    return last - first + 1


class FixedTherapyMind(TheraMind):
    """TheraMind whose therapy never changes after session 1 (no cross-session adaptation)."""

    def _next_plan(self, profile: PatientProfile) -> SessionPlan:
        plan = super()._next_plan(profile)
        if plan.session_no > 1:
            first = self.services.store.plan(profile.patient_id, 1)
            plan.therapies = list(first.therapies)
            names = {t.id: t.name for t in self.services.taxonomy.therapies}
            plan.opening = opening_line(plan, names)
        return plan


class TheraMindCounselor(Counselor):
    """The TheraMind framework behind the counselor protocol."""

    kind = "theramind"

    def __init__(self, app: TheraMind) -> None:
        self.app = app
        self.session: Session | None = None
        self._opening: list[CallUsage] = []

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
        meter = self.app.services.router.meter
        before = meter.snapshot().get("counselor", {})
        self.session = self.app.start_session(patient_id, profile=profile)
        after = meter.snapshot().get("counselor", {})
        calls = int(after.get("calls", 0) - before.get("calls", 0))
        self._opening = []
        if calls:
            self._opening = [
                CallUsage(
                    role="counselor",
                    agent="open_session",
                    prompt_tokens=int(after["prompt_tokens"] - before.get("prompt_tokens", 0)),
                    completion_tokens=int(
                        after["completion_tokens"] - before.get("completion_tokens", 0)
                    ),
                    latency_s=round(after["latency_s"] - before.get("latency_s", 0.0), 4),
                    attempts=calls,
                )
            ]
        return self.session.opening

    def opening_calls(self) -> list[CallUsage]:
        """Return the calls of the last opening (the first session's therapy choice)."""
        return list(self._opening)

    def _session(self) -> Session:
        if self.session is None:
            raise RuntimeError("open_session must be called first")
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
        """Run the cross-session loop; return the outcome (efficacy, decision, summary)."""
        session = self._session()
        self.session = None
        outcome = session.end()
        return outcome.model_dump(mode="json")

    def rewind(
        self, patient_id: str, profile: PatientProfile, history: Sequence[PastSession]
    ) -> None:
        """Erase whatever the store holds beyond the completed sessions."""
        self.session = None
        discard_sessions(self.app, patient_id, len(history) + 1)

    def model_ids(self) -> dict[str, str]:
        """Return the counselor role's model."""
        return {"counselor": self.app.services.router.model_id("counselor")}

    def close(self) -> None:
        """Close the app (stores, models, checkpointer)."""
        self.app.close()
