"""The orchestrator: runs one session between a counselor and a simulated patient.

It owns the turn loop and records why the session ended. Blocking calls (models, stores) run in
worker threads, so many sessions can share one event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from theramind.errors import ModelUnavailableError, SessionBusyError, SimulationError
from theramind.llm.backends import interrupt_backends
from theramind.records import CallUsage, utcnow
from theramind.signals import SIGNAL
from theramind.simulation.counselors import Counselor, CounselorTurn
from theramind.simulation.latent import LatentState, Questionnaire, SessionInfo, TurnSignal
from theramind.simulation.patient import PatientTurn, SimulatedPatient
from theramind.simulation.profiles import SimProfile
from theramind.simulation.records import EndReason

log = logging.getLogger(__name__)


@dataclass
class Round:
    """One round: the counselor text the patient heard, the patient's turn, the reply."""

    prompt: str
    patient: PatientTurn
    response: CounselorTurn
    latent: LatentState


@dataclass
class SessionResult:
    """A finished (or failed) session."""

    session_no: int
    opening: str
    rounds: list[Round]
    end_reason: EndReason
    started_at: datetime
    wall_s: float = 0.0
    latent_before: LatentState | None = None
    latent_after: LatentState | None = None
    questionnaire: Questionnaire | None = None
    understood: float = 0.0
    close: dict[str, Any] | None = None
    opening_calls: list[CallUsage] = field(default_factory=list)
    error: BaseException | None = field(default=None, repr=False)

    @property
    def therapies(self) -> list[str]:
        """Therapies the counselor applied, in order of first use."""
        return list(dict.fromkeys(t for r in self.rounds for t in r.response.therapies))


OnRound = Callable[[Round], None]
T = TypeVar("T")
INFRASTRUCTURE_FAULTS: tuple[type[BaseException], ...] = (
    ModelUnavailableError,
    SessionBusyError,
    sqlite3.Error,
    OSError,
)
"""Failures of what both sides run on (model server, store, disk), not of either side."""
DRAIN_S = 120.0
"""How long a cancelled session waits for its call in flight before giving up on it."""
_DRAINING = threading.Event()


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call in a worker thread; when cancelled, let the call finish first.

    A thread cannot be stopped. A cancelled caller that went on would close the counselor's
    store, memory and models while the call is still inside them, and native code (llama.cpp,
    chroma) then crashes the process at exit. So a cancel stops in-process models from taking
    new calls, waits for this one to return, and only then passes on.

    The call is a plain executor future, not a task (as `asyncio.to_thread` would make): at
    exit `asyncio.run` cancels every task still pending, and a cancelled task reads as done
    while its thread still runs, which let the track close its store under the call.
    """
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, fn, *args)
    future: asyncio.Future[T] = loop.run_in_executor(None, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        interrupt_backends()
        await _drain(future)
        raise


async def _drain(future: asyncio.Future[Any]) -> None:
    """Wait (at most `DRAIN_S`) for a call in flight, through any further cancels."""
    if not future.done() and not _DRAINING.is_set():
        _DRAINING.set()
        log.info("interrupted: letting the model calls in flight finish", extra=SIGNAL)
    deadline = time.monotonic() + DRAIN_S
    while not future.done() and time.monotonic() < deadline:
        try:
            await asyncio.wait([future], timeout=deadline - time.monotonic())
        except asyncio.CancelledError:  # a second Ctrl-C must not close things under the call
            continue
    if future.done() and not future.cancelled():
        future.exception()  # retrieved: the cancel is what matters now


@dataclass
class _Side:
    """Which side a session is running now, to blame the right one when it fails."""

    now: EndReason = EndReason.INFRASTRUCTURE_ERROR

    def blame(self, exc: BaseException) -> EndReason:
        """The end reason of a failure: the infrastructure's, else the side running."""
        if isinstance(exc, INFRASTRUCTURE_FAULTS):
            return EndReason.INFRASTRUCTURE_ERROR
        return self.now


class Orchestrator:
    """Runs sessions between one counselor and one simulated patient."""

    def __init__(
        self, counselor: Counselor, patient: SimulatedPatient, *, round_cap: int = 8
    ) -> None:
        self.counselor = counselor
        self.patient = patient
        self.round_cap = round_cap

    async def arun_session(
        self,
        profile: SimProfile,
        session_no: int,
        rng: random.Random,
        *,
        on_round: OnRound | None = None,
    ) -> SessionResult:
        """Run one session to its end; an exception ends it with the failing side as reason."""
        started, clock = utcnow(), time.perf_counter()
        side = _Side()
        self.patient.reset(profile, session_no, rng)
        before = self.patient.latent.model_copy(deep=True) if self.patient.latent else None
        result = SessionResult(session_no, "", [], side.now, started, latent_before=before)
        try:
            side.now = EndReason.COUNSELOR_ERROR
            result.opening = await in_thread(
                self.counselor.open_session, profile.id, profile.intake()
            )
            result.opening_calls = self.counselor.opening_calls()
            result.end_reason = await self._loop(result, on_round, side)
            side.now = EndReason.COUNSELOR_ERROR
            result.close = await in_thread(self.counselor.close_session)
            info = SessionInfo(
                session_no=session_no,
                therapies=result.therapies,
                turns=[
                    TurnSignal(
                        attitude=r.patient.attitude,
                        strategy=r.response.strategy,
                        reply=r.response.reply,
                    )
                    for r in result.rounds
                ],
                end_reason=result.end_reason.value,
            )
            side.now = EndReason.PATIENT_ERROR
            result.questionnaire = await in_thread(self.patient.end_session, info)
            after = self.patient.latent
            result.latent_after = after.model_copy(deep=True) if after else None
            if after is not None and after.last_understood is not None:
                result.understood = after.last_understood
        except Exception as exc:
            log.warning("session %d of %s failed: %s", session_no, profile.id, exc)
            result.end_reason, result.error = side.blame(exc), exc
        result.wall_s = round(time.perf_counter() - clock, 4)
        return result

    async def _loop(
        self, result: SessionResult, on_round: OnRound | None, side: _Side
    ) -> EndReason:
        prompt = result.opening
        for round_no in range(1, self.round_cap + 1):
            side.now = EndReason.PATIENT_ERROR
            turn = await in_thread(self.patient.step, prompt)
            side.now = EndReason.COUNSELOR_ERROR
            response = await in_thread(self.counselor.respond, turn.text)
            latent = self.patient.latent
            if latent is None:
                side.now = EndReason.PATIENT_ERROR
                raise SimulationError("the patient has no latent state after a step")
            done = Round(prompt, turn, response, latent.model_copy(deep=True))
            result.rounds.append(done)
            if on_round is not None:
                on_round(done)
            if turn.wants_to_end:
                return EndReason.PATIENT_CLOSED
            if round_no >= self.round_cap:
                return EndReason.ROUND_CAP
            if response.closing:
                return EndReason.COUNSELOR_CLOSED
            prompt = response.reply
        return EndReason.ROUND_CAP

    def run_session(
        self,
        profile: SimProfile,
        session_no: int,
        rng: random.Random,
        *,
        on_round: OnRound | None = None,
    ) -> SessionResult:
        """Synchronous `arun_session` (not from inside a running event loop)."""
        return asyncio.run(self.arun_session(profile, session_no, rng, on_round=on_round))
