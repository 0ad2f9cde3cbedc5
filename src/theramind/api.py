"""The Python API: `TheraMind` manages patients and sessions; `Session` runs the turns."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Durability, StreamMode

from theramind.checkpoints import checkpoint_saver
from theramind.config import load_config
from theramind.erasure import vacuum
from theramind.errors import (
    InputError,
    SessionBusyError,
    SessionClosedError,
    SessionStateError,
    UnknownPatientError,
)
from theramind.graphs import course, session
from theramind.graphs.course import CloseInput
from theramind.graphs.session import TurnInput
from theramind.lease import new_owner, owner_stale
from theramind.llm import BaseBackend
from theramind.planning import plan_next_session
from theramind.records import (
    PatientProfile,
    SessionOutcome,
    SessionPlan,
    TurnRecord,
)
from theramind.services import CounselContext, Services, build_services
from theramind.validation import check_session_no, parse_profile, validate_message

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


def session_threads(patient_id: str, session_no: int) -> tuple[str, str]:
    """Return the checkpoint threads of a session: its turns, and its close."""
    turns = f"{patient_id}:{session_no}"
    return turns, f"{turns}:close"


class Session:
    """One counseling session with one patient; not shared between threads.

    A handle writes only while it holds the session's lease: `start_session` takes it, every
    turn renews it, `end()` and `release()` give it up. While one handle holds it, any other
    handle or process gets `SessionBusyError` and nothing of theirs is stored.
    """

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
        self._owner = new_owner(self)
        self._context = CounselContext(
            self.patient_id, self.session_no, services=app.services, lease_owner=self._owner
        )
        self.last: TurnResult | None = None
        app._sessions.add(self)

    def _hold(self) -> None:
        """Take or renew this handle's lease; after taking it, catch up with stored turns.

        Raises:
            SessionBusyError: another live handle or process holds the session.
        """
        taken = self._app.services.store.acquire_lease(
            self.patient_id,
            self.session_no,
            self._owner,
            ttl_s=self._app.settings.storage.lease_ttl_s,
            stale=owner_stale,
        )
        if taken:
            self._sync_checkpoint()

    def release(self) -> None:
        """Give up the session's lease, so another handle or process may write it."""
        self._app.services.store.release_lease(self.patient_id, self.session_no, self._owner)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

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

    @property
    def risk_open(self) -> bool:
        """Whether a risk is open: carried over unfollowed, or raised in this session.

        While it is, only the patient's explicit closing words close the session, and the
        closing reply carries `safety_reminder(...)`; a caller ending the session otherwise
        (a `/end` command) should give the patient that reminder too.
        """
        return self.plan.open_risk is not None or any(t.crisis for t in self.turns)

    def _input(self, text: object, *, stream: bool = False) -> TurnInput:
        limit = self._app.settings.limits.max_message_chars
        message = validate_message(text, limit)
        status = self.status
        if status != "open":
            raise SessionClosedError(
                f"session {self.session_no} of {self.patient_id!r} is {status}; "
                + ("call end()" if status == "closing" else "start a new session")
            )
        self._hold()
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
                "turns": [
                    session.kept_turn(t.model_dump(mode="json"))
                    for t in missing[-session.RECENT_KEPT :]
                ],
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
        """Run one turn: screen, recall, perceive, plan, respond, record.

        Raises:
            InputError: empty, oversized or non-text message.
            SessionClosedError: the session is closing or closed.
            SessionBusyError: another handle or process writes this session; the turn was
                not stored and no reply is returned.
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

        The session stops taking turns as the close begins, so a close that fails part-way
        (call `end()` again) or is killed resumes over exactly the turns stored.

        Raises:
            SessionClosedError: the session is already closed.
            SessionBusyError: another handle or process writes this session.
        """
        status = self.status
        if status == "closed":
            raise SessionClosedError(f"session {self.session_no} of {self.patient_id!r} is closed")
        log.info(
            "closing session %d of %s: judging it, planning the next",
            self.session_no,
            self.patient_id,
        )
        self._hold()
        store = self._app.services.store
        if status == "open":
            store.set_status(self.patient_id, self.session_no, "closing")
        graph = self._app.course_graph
        # Close steps read the session's turns from the store, and the session takes no turns
        # once closing; a pending close that judged fewer turns than are stored (a store from
        # before sessions locked at close) is started over.
        snapshot = graph.get_state(self._close_config)
        pending = snapshot.next
        seen = snapshot.values.get("turns_seen")
        if pending and seen is not None and seen != len(self.turns):
            log.warning("restarting the close of %s:%d", self.patient_id, self.session_no)
            self._app._saver.delete_thread(self._close_config["configurable"]["thread_id"])
            pending = ()
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
        self._sessions: weakref.WeakSet[Session] = weakref.WeakSet()
        self._saver = checkpoint_saver(self.settings)
        # Compiled once per process; each app takes a copy bound to its own checkpointer.
        self.session_graph = session.graph.copy({"checkpointer": self._saver})
        self.course_graph = course.graph.copy({"checkpointer": self._saver})

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
        parsed = parse_profile(profile)
        self.services.store.upsert_patient(parsed)
        return parsed

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
        """Erase a patient: records, memories and checkpoints, compacting the files they were in.

        Afterwards no file under the storage home holds the patient's words or id (the patient
        store, checkpoints and embedded chroma store are vacuumed, the index directory removed).
        """
        self.discard_sessions(patient_id, 1)
        self.services.store.delete_patient(patient_id)
        if self.services.memory is not None:
            self.services.memory.delete_patient(patient_id)
        if isinstance(self._saver, SqliteSaver):
            vacuum(self._saver.conn, "checkpoints.sqlite", self._saver.lock)

    def discard_sessions(self, patient_id: str, first: int) -> int:
        """Erase the patient's sessions from number `first` on: records, checkpoints, memories.

        For redoing sessions (a simulation resuming after a crash, a session entered by
        mistake). Sessions before `first` and the intake stay. Returns how many were erased.
        """
        check_session_no(first, "first")
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

    def next_plan(self, profile: PatientProfile) -> SessionPlan:
        """Derive the plan of the patient's next session (called by `start_session`).

        From the last outcome (therapy, phase, focus, formulation) or, before session 1, from
        the intake: the strategist's first choice of therapy, whose call the plan records in
        `opening_calls`. Override to change how plans are made (an ablation, say); call
        `theramind.planning.write_opening` again after changing what the opening states.
        """
        return plan_next_session(self.services, profile)

    def start_session(
        self,
        patient_id: str,
        *,
        profile: PatientProfile | Mapping[str, Any] | None = None,
        wait: float = 0.0,
    ) -> Session:
        """Start the patient's next session, or resume the one left open.

        The returned handle holds the session's lease (see `Session`). When another handle or
        process holds it, wait up to `wait` seconds for it to be released (its session may
        close meanwhile: then the next session starts).

        Raises:
            UnknownPatientError: the patient is unknown and no profile was given.
            SessionBusyError: the session is still held by another writer after `wait`.
        """
        if not isinstance(patient_id, str) or not patient_id.strip():
            raise InputError("patient_id must be a non-empty string")
        if profile is not None:
            parsed = parse_profile(profile)
            if parsed.patient_id != patient_id:  # checked before anything is written
                raise InputError(
                    f"profile.patient_id {parsed.patient_id!r} does not match patient_id "
                    f"{patient_id!r}"
                )
            self.services.store.upsert_patient(parsed)
        if not self.services.store.has_patient(patient_id):
            raise UnknownPatientError(
                f"unknown patient {patient_id!r}: pass profile=... to register them"
            )
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not wait >= 0:
            raise InputError("wait must be a number of seconds (0 or more)")
        deadline = time.monotonic() + wait
        while True:
            try:
                return self._open_session(patient_id)
            except SessionBusyError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                time.sleep(min(0.2, left))

    def _open_session(self, patient_id: str) -> Session:
        store = self.services.store
        unfinished = store.open_session(patient_id)
        if unfinished is not None:
            plan = store.plan(patient_id, unfinished[0])
            resumed = Session(self, plan, resumed=True)
            resumed._hold()
            again = store.open_session(patient_id)
            if again is None or again[0] != plan.session_no:
                # Its writer closed it between the read above and the lease: start the next.
                resumed.release()
                return self._open_session(patient_id)
            log.info("resuming session %d of %s", plan.session_no, patient_id)
            return resumed
        plan = self.next_plan(store.patient(patient_id))
        started = Session(self, plan)
        store.create_session(plan, owner=started._owner, ttl_s=self.settings.storage.lease_ttl_s)
        return started

    async def astart_session(
        self, patient_id: str, *, profile: PatientProfile | Mapping[str, Any] | None = None
    ) -> Session:
        """Async `start_session`."""
        return await asyncio.to_thread(self.start_session, patient_id, profile=profile)

    def session(self, patient_id: str, session_no: int) -> Session:
        """Return a handle on an existing session (SessionStateError if none)."""
        check_session_no(session_no)
        return Session(self, self.services.store.plan(patient_id, session_no))

    def close(self) -> None:
        """Release sessions' leases, models, stores and connections."""
        for held in list(self._sessions):
            try:
                held.release()
            except Exception:  # releasing is best effort: leases also expire
                log.debug("lease release failed", exc_info=True)
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
