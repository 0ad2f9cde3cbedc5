"""The Python API: `TheraMind` manages patients and sessions; `Session` runs the turns."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Durability, StreamMode

from theramind.agents import strategist
from theramind.agents.intake import intake_facts, intake_focus
from theramind.config import Settings, load_config
from theramind.errors import (
    ConfigError,
    InputError,
    SessionClosedError,
    SessionStateError,
    UnknownPatientError,
)
from theramind.graphs import course, session
from theramind.graphs.course import CloseInput
from theramind.graphs.session import TurnInput
from theramind.llm import BaseBackend
from theramind.records import (
    CallUsage,
    PatientProfile,
    SessionOutcome,
    SessionPlan,
    TurnRecord,
)
from theramind.safety import checkin_prompt
from theramind.services import CounselContext, Services, build_services

log = logging.getLogger(__name__)

TURN_DURABILITY: Durability = "exit"
"""A turn's checkpoint is written once, when the turn ends. The patient store is the record of
what was said (written in `record`, in one transaction); a turn cut short is redone whole, and
`Session._sync_checkpoint` adds back a stored turn that its checkpoint missed."""


@dataclass(frozen=True)
class TurnResult:
    """The counselor's reply and the typed record of the turn."""

    reply: str
    record: TurnRecord

    @property
    def closing(self) -> bool:
        """Whether this reply closed the session (call `Session.end()` next)."""
        return self.record.closing


def _checkpointer(settings: Settings) -> BaseCheckpointSaver[Any]:
    kind = settings.storage.checkpointer
    if kind == "memory":
        return InMemorySaver()
    if kind == "postgres":
        try:
            from langgraph.checkpoint.postgres import PostgresSaver
        except ImportError as exc:
            raise ConfigError(
                "checkpointer 'postgres' needs `pip install 'theramind[postgres]'`"
            ) from exc
        if not settings.storage.postgres_url:
            raise ConfigError("storage.postgres_url is required for the postgres checkpointer")
        import psycopg

        conn = psycopg.connect(settings.storage.postgres_url, autocommit=True)
        saver = PostgresSaver(conn)
        saver.setup()
        return saver
    settings.home.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(settings.home / "checkpoints.sqlite"), check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL keeps every committed checkpoint across a killed process (only an
    # operating-system crash can lose the last ones) and skips an fsync per graph step.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return SqliteSaver(conn)


def session_threads(patient_id: str, session_no: int) -> tuple[str, str]:
    """Return the checkpoint threads of a session: its turns, and its close."""
    turns = f"{patient_id}:{session_no}"
    return turns, f"{turns}:close"


def validate_message(text: object, limit: int) -> str:
    """Return a patient message or raise `InputError` saying what is wrong with it."""
    if not isinstance(text, str):
        raise InputError(f"message must be a string, not {type(text).__name__}")
    if not text.strip():
        raise InputError("message is empty")
    if len(text) > limit:
        raise InputError(f"message is {len(text)} characters; the limit is {limit}")
    if "\x00" in text:
        raise InputError("message contains a NUL character")
    return text


def opening_line(plan: SessionPlan, names: Mapping[str, str]) -> str:
    """Write the counselor's deterministic opening for a session from its plan."""
    name = plan.pseudonym or "there"
    therapy = " and ".join(names.get(t, t) for t in plan.therapies)
    parts = []
    if plan.open_risk is not None:
        parts.append(checkin_prompt(plan.open_risk))
    if plan.session_no == 1:
        parts.append(
            f"Hello {name}, I'm glad you're here. This is a space to talk about whatever is on "
            "your mind. What brings you here today?"
        )
    else:
        focus = f" Today I'd like us to look at {plan.focus.rstrip('.')}." if plan.focus else ""
        parts.append(
            f"Welcome back, {name}. We'll keep working with {therapy} in our "
            f"{plan.phase} phase.{focus} How have things been since last time?"
        )
    return " ".join(parts)


class Session:
    """One counseling session with one patient; not shared between threads."""

    def __init__(self, app: TheraMind, plan: SessionPlan, *, resumed: bool = False) -> None:
        self._app = app
        self.plan = plan
        self.resumed = resumed
        """Whether `start_session` picked this session up where it was left open."""
        self.patient_id = plan.patient_id
        self.session_no = plan.session_no
        turn_thread, close_thread = session_threads(self.patient_id, self.session_no)
        self._config: RunnableConfig = {"configurable": {"thread_id": turn_thread}}
        self._close_config: RunnableConfig = {"configurable": {"thread_id": close_thread}}
        self._context = CounselContext(self.patient_id, self.session_no, services=app.services)
        self.last: TurnResult | None = None

    @property
    def opening(self) -> str:
        """The counselor's opening words, reflecting last session's decision and open risks."""
        return self.plan.opening

    @property
    def status(self) -> str:
        """'open', 'closing' (the counselor closed; call end()) or 'closed'."""
        return self._app.services.store.session_status(self.patient_id, self.session_no)

    @property
    def turns(self) -> list[TurnRecord]:
        """Every stored turn of this session."""
        return self._app.services.store.turns(self.patient_id, self.session_no)

    def _input(self, text: object, *, stream: bool = False) -> TurnInput:
        limit = self._app.settings.limits.max_message_chars
        message = validate_message(text, limit)
        status = self.status
        if status != "open":
            raise SessionClosedError(
                f"session {self.session_no} of {self.patient_id!r} is {status}; "
                + ("call end()" if status == "closing" else "start a new session")
            )
        # The plan is not sent: `screen` loads it from the store on the thread's first turn.
        return {"message": message, "stream": stream}

    def _sync_checkpoint(self) -> None:
        """After a crash, add stored turns the checkpoint lacks, so numbering stays true."""
        state = self._app.session_graph.get_state(self._config)
        known = session.turn_count(state.values)
        stored = self.turns
        if len(stored) > known:
            missing = stored[known:]
            update: dict[str, Any] = {
                "turns": [t.model_dump(mode="json") for t in missing[-session.RECENT_KEPT :]],
                "turn_count": len(stored),
                "used": [t.strategy for t in missing],
                "plan": self.plan.model_dump(mode="json"),
            }
            if any(t.crisis for t in stored):
                update["risk_open"] = True
            self._app.session_graph.update_state(self._config, update, as_node="record")

    def _result(self, output: Mapping[str, Any]) -> TurnResult:
        record = TurnRecord.model_validate(output["last"])
        self.last = TurnResult(record.reply, record)
        return self.last

    def respond(self, text: str) -> TurnResult:
        """Run one turn: screen, perceive ∥ recall, plan, respond, record.

        Raises:
            InputError: empty, oversized or non-text message.
            SessionClosedError: the session is closing or closed.
        """
        payload = self._input(text)
        output = self._app.session_graph.invoke(
            payload, self._config, context=self._context, durability=TURN_DURABILITY
        )
        return self._result(output)

    def stream(self, text: str) -> Iterator[str]:
        """Yield the reply as it is written; `self.last` holds the checked result afterwards.

        Crisis replies are yielded whole, after their check. If a check rewrote a streamed
        reply, `self.last.record.fallbacks` says so and `self.last.reply` is authoritative.
        """
        payload = self._input(text, stream=True)
        final: dict[str, Any] = {}
        modes: list[StreamMode] = ["custom", "values"]
        for mode, chunk in self._app.session_graph.stream(
            payload,
            self._config,
            context=self._context,
            stream_mode=modes,
            durability=TURN_DURABILITY,
        ):
            if mode == "custom" and isinstance(chunk, dict) and "token" in chunk:
                yield chunk["token"]
            elif mode == "values" and isinstance(chunk, dict):
                final = chunk
        result = self._result(final)
        if result.record.crisis:
            yield result.reply

    async def arespond(self, text: str) -> TurnResult:
        """Async `respond` (runs the turn in a worker thread)."""
        return await asyncio.to_thread(self.respond, text)

    async def astream(self, text: str) -> AsyncIterator[str]:
        """Async `stream`."""
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def pump() -> None:
            try:
                for chunk in self.stream(text):
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        task = loop.run_in_executor(None, pump)
        while (chunk := await queue.get()) is not None:
            yield chunk
        await task

    def end(self) -> SessionOutcome:
        """Close the session: evaluate efficacy, decide therapy, update formulation, remember.

        Resumes a close that was interrupted. Raises `SessionClosedError` if already closed.
        """
        if self.status == "closed":
            raise SessionClosedError(f"session {self.session_no} of {self.patient_id!r} is closed")
        graph = self._app.course_graph
        pending = graph.get_state(self._close_config).next
        start: CloseInput | None = None if pending else CloseInput()
        output = graph.invoke(start, self._close_config, context=self._context)
        return SessionOutcome.model_validate(output["outcome"])

    async def aend(self) -> SessionOutcome:
        """Async `end`."""
        return await asyncio.to_thread(self.end)


class TheraMind:
    """A longitudinal counselor: patients, their sessions, and the graphs that run them."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self._saver = _checkpointer(self.settings)
        self.session_graph = session.builder.compile(checkpointer=self._saver)
        self.course_graph = course.builder.compile(checkpointer=self._saver)

    @classmethod
    def from_config(
        cls,
        path: str | Path | None = None,
        *,
        backends: Mapping[str, BaseBackend] | None = None,
        chat_models: Mapping[str, Any] | None = None,
        use_memory: bool = True,
        **overrides: Any,
    ) -> TheraMind:
        """Build from a YAML config (default `configs/default.yaml`).

        `backends` or `chat_models` (LangChain chat models) replace configured models per role.
        """
        settings = load_config(path, **overrides)
        return cls(
            build_services(
                settings, backends=backends, chat_models=chat_models, use_memory=use_memory
            )
        )

    # -- patients -------------------------------------------------------------------------------

    def register_patient(self, profile: PatientProfile | Mapping[str, Any]) -> PatientProfile:
        """Create or update a patient from a profile."""
        if not isinstance(profile, PatientProfile):
            if not isinstance(profile, Mapping):
                raise InputError("profile must be a PatientProfile or a mapping")
            profile = PatientProfile.model_validate(dict(profile))
        self.services.store.upsert_patient(profile)
        return profile

    def patient(self, patient_id: str) -> PatientProfile:
        """Return a patient's profile (UnknownPatientError if none)."""
        return self.services.store.patient(patient_id)

    def history(self, patient_id: str) -> list[SessionOutcome]:
        """Return the outcomes of the patient's closed sessions (therapy decisions with reasons)."""
        self.services.store.patient(patient_id)
        return self.services.store.outcomes(patient_id)

    def export_patient(self, patient_id: str) -> dict[str, Any]:
        """Return everything stored about a patient, memories included."""
        data = self.services.store.export_patient(patient_id)
        if self.services.memory is not None:
            data["memories"] = [
                m.model_dump(mode="json") for m in self.services.memory.export_patient(patient_id)
            ]
        return data

    def delete_patient(self, patient_id: str) -> None:
        """Erase a patient: records, memories and checkpoints."""
        self.discard_sessions(patient_id, 1)
        self.services.store.delete_patient(patient_id)
        if self.services.memory is not None:
            self.services.memory.delete_patient(patient_id)

    def discard_sessions(self, patient_id: str, first: int) -> int:
        """Erase the patient's sessions from number `first` on: records, checkpoints, memories.

        For redoing sessions (a simulation resuming after a crash, a session entered by
        mistake). Sessions before `first` and the intake stay. Returns how many were erased.
        """
        if not isinstance(first, int) or isinstance(first, bool) or first < 1:
            raise InputError("first must be a session number (an int of at least 1)")
        numbers = self.services.store.discard_sessions(patient_id, first)
        for no in numbers:
            for thread in session_threads(patient_id, no):
                self._saver.delete_thread(thread)
        if self.services.memory is not None:
            self.services.memory.forget_sessions(patient_id, first)
        if numbers:
            log.info("discarded sessions %d..%d of %s", numbers[0], numbers[-1], patient_id)
        return len(numbers)

    # -- sessions -------------------------------------------------------------------------------

    def _seed_intake(self, profile: PatientProfile) -> None:
        """Put the intake record in memory, so session 1 can recall what the patient came with."""
        memory = self.services.memory
        if memory is None:
            return
        try:
            memory.remember_intake(profile.patient_id, intake_facts(profile))
        except Exception as exc:  # memory is an aid: the session starts without it
            log.warning("could not seed intake memories for %s: %s", profile.patient_id, exc)

    def next_plan(self, profile: PatientProfile) -> SessionPlan:
        """Derive the plan of the patient's next session (called by `start_session`).

        From the last outcome (therapy, phase, focus, formulation) or, before session 1, from
        the intake: the strategist's first choice of therapy, whose call the plan records in
        `opening_calls`. Override to change how plans are made (an ablation, say).
        """
        store = self.services.store
        outcomes = store.outcomes(profile.patient_id)
        open_risks = store.risk_events(profile.patient_id, open_only=True)
        session_no = store.last_session_no(profile.patient_id) + 1
        if outcomes:
            last = outcomes[-1]
            therapies, phase = last.decision.therapies, last.decision.phase
            focus, summary = last.summary.next_focus, last.summary.summary
            formulation = last.formulation
            opening_calls: list[CallUsage] = []
        else:
            out = strategist.initial_therapy(
                self.services.router, profile=profile, taxonomy=self.services.taxonomy
            )
            therapies, phase = out.value.therapies, out.value.phase
            focus, summary, formulation = intake_focus(profile), "", None
            opening_calls = [out.call]
            self._seed_intake(profile)
        plan = SessionPlan(
            patient_id=profile.patient_id,
            session_no=session_no,
            pseudonym=profile.pseudonym,
            presenting_problem=profile.presenting_problem,
            therapies=therapies,
            phase=phase,
            focus=focus,
            previous_summary=summary,
            formulation=formulation,
            open_risk=open_risks[-1] if open_risks else None,
            opening_calls=opening_calls,
        )
        names = {t.id: t.name for t in self.services.taxonomy.therapies}
        plan.opening = opening_line(plan, names)
        return plan

    def start_session(
        self, patient_id: str, *, profile: PatientProfile | Mapping[str, Any] | None = None
    ) -> Session:
        """Start the patient's next session, or resume the one left open.

        Raises:
            UnknownPatientError: the patient is unknown and no profile was given.
        """
        if not isinstance(patient_id, str) or not patient_id.strip():
            raise InputError("patient_id must be a non-empty string")
        if profile is not None:
            registered = self.register_patient(profile)
            if registered.patient_id != patient_id:
                raise InputError("profile.patient_id does not match patient_id")
        if not self.services.store.has_patient(patient_id):
            raise UnknownPatientError(
                f"unknown patient {patient_id!r}: pass profile=... to register them"
            )
        store = self.services.store
        unfinished = store.open_session(patient_id)
        if unfinished is not None:
            plan = store.plan(patient_id, unfinished[0])
            resumed = Session(self, plan, resumed=True)
            resumed._sync_checkpoint()
            log.info("resuming session %d of %s", plan.session_no, patient_id)
            return resumed
        plan = self.next_plan(store.patient(patient_id))
        store.create_session(plan)
        return Session(self, plan)

    async def astart_session(
        self, patient_id: str, *, profile: PatientProfile | Mapping[str, Any] | None = None
    ) -> Session:
        """Async `start_session`."""
        return await asyncio.to_thread(self.start_session, patient_id, profile=profile)

    def session(self, patient_id: str, session_no: int) -> Session:
        """Return a handle on an existing session (SessionStateError if none)."""
        return Session(self, self.services.store.plan(patient_id, session_no))

    def close(self) -> None:
        """Release models, stores and connections."""
        self.services.close()
        conn = getattr(self._saver, "conn", None)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing is best effort
                log.debug("checkpointer close failed", exc_info=True)

    def __enter__(self) -> TheraMind:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Session", "SessionStateError", "TheraMind", "TurnResult"]
