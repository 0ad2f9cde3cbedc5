"""Instruments: a counselor wrapper that measures every turn, method probes, and statistics."""

from __future__ import annotations

import functools
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.endpoint import Endpoint, WireCall
from theramind.llm import ModelRouter
from theramind.records import PatientProfile
from theramind.simulation.counselors import (
    Counselor,
    CounselorTurn,
    PastSession,
    TheraMindCounselor,
)
from theramind.simulation.factory import session_seed
from theramind.simulation.orchestrator import Orchestrator, SessionResult
from theramind.simulation.patient import PatientSettings
from theramind.simulation.profiles import SimProfile
from theramind.simulation.scripted_patient import ScriptedPatient

ROLE = "counselor"


# --- statistics ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (linear interpolation); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float:
    """Return the mean; NaN for no values."""
    return sum(values) / len(values) if values else math.nan


def distribution(values: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    """Summarise values (times `scale`): n, p50, p95, mean, max."""
    scaled = [v * scale for v in values]
    return {
        "n": len(scaled),
        "p50": round(percentile(scaled, 50), 3),
        "p95": round(percentile(scaled, 95), 3),
        "mean": round(mean(scaled), 3),
        "max": round(max(scaled), 3) if scaled else math.nan,
    }


def calls_in_sequence(calls: Sequence[WireCall]) -> int:
    """Return the longest chain of calls that ran one after another (the critical path).

    Calls whose intervals overlap ran in parallel; the most calls with pairwise disjoint
    intervals (earliest-end-first) is how many model round trips the turn waited for in a row.
    """
    count, last_end = 0, -math.inf
    for call in sorted(calls, key=lambda c: c.end):
        if call.start >= last_end:
            count += 1
            last_end = call.end
    return count


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Return how long two intervals overlap (0 if they do not)."""
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


# --- probes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """One timed call of a probed method."""

    label: str
    start: float
    end: float


class Probe:
    """Times chosen methods of live objects; every call becomes a `Span` (wall-clock times)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    def wrap(self, obj: Any, method: str, label: str) -> None:
        """Replace `obj.method` on the instance by a timed wrapper (no-op if obj is None)."""
        if obj is None or not hasattr(obj, method):
            return
        original: Callable[..., Any] = getattr(obj, method)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.time()
            try:
                return original(*args, **kwargs)
            finally:
                span = Span(label, start, time.time())
                with self._lock:
                    self.spans.append(span)

        setattr(obj, method, timed)

    def mark(self) -> int:
        """Return a position in the span list."""
        with self._lock:
            return len(self.spans)

    def since(self, mark: int) -> list[Span]:
        """Return the spans recorded after `mark`."""
        with self._lock:
            return list(self.spans[mark:])


def probe_theramind(counselor: TheraMindCounselor, probe: Probe) -> None:
    """Probe the parts of a TheraMind turn that are not model calls."""
    services = counselor.app.services
    memory = services.memory
    probe.wrap(memory, "recall", "recall")
    probe.wrap(memory, "remember_soon", "remember")
    probe.wrap(services.store, "add_turn", "store")
    saver = counselor.app.session_graph.checkpointer
    probe.wrap(saver, "put", "checkpoint")
    probe.wrap(saver, "put_writes", "checkpoint")


# --- the measured counselor ----------------------------------------------------------------------


@dataclass
class TurnSample:
    """What one counselor turn cost, counted three ways: framework record, wire, clocks."""

    session_no: int
    round: int
    wall_s: float
    model_s: float
    recorded_model_s: float
    cpu_s: float
    recorded_calls: int
    wire_calls: int
    in_sequence: int
    prompt_tokens: int
    completion_tokens: int
    recorded_prompt_tokens: int
    recorded_completion_tokens: int
    prompt_by_request: dict[str, int] = field(default_factory=dict)
    parts: dict[str, float] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)
    recall_s: float | None = None
    recall_hidden_s: float | None = None


@dataclass
class SessionSample:
    """A session's frame: its model calls outside the turns, and how it ended."""

    session_no: int
    rounds: int = 0
    end_reason: str = ""
    open_calls: int = 0
    open_prompt_tokens: int = 0
    open_s: float = 0.0
    close_calls: int = 0
    close_prompt_tokens: int = 0
    wall_s: float = 0.0


def router_of(counselor: Counselor) -> ModelRouter:
    """Return the model router a counselor calls through."""
    router = getattr(counselor, "router", None)
    if isinstance(router, ModelRouter):
        return router
    if isinstance(counselor, TheraMindCounselor):
        return counselor.app.services.router
    raise TypeError(f"cannot find the model router of {type(counselor).__name__}")


def _model_time(router: ModelRouter) -> float:
    return float(router.meter.snapshot().get(ROLE, {}).get("latency_s", 0.0))


class MeteredCounselor(Counselor):
    """Wraps a counselor; records each turn's wall, CPU and model time, wire calls and tokens."""

    def __init__(self, inner: Counselor, endpoint: Endpoint, probe: Probe | None = None) -> None:
        self.inner = inner
        self.kind = inner.kind  # type: ignore[misc]
        self.endpoint = endpoint
        self.probe = probe or Probe()
        self.router = router_of(inner)
        self.turns: list[TurnSample] = []
        self.sessions: list[SessionSample] = []
        self._session_no = 0
        self._round = 0

    def open_session(self, patient_id: str, profile: PatientProfile) -> str:
        """Open the inner counselor's session and count its calls."""
        mark, clock = self.endpoint.mark(), time.perf_counter()
        opening = self.inner.open_session(patient_id, profile)
        took = time.perf_counter() - clock
        wire = self.endpoint.since(mark)
        self._session_no += 1
        self._round = 0
        self.sessions.append(
            SessionSample(
                self._session_no,
                open_calls=len(wire),
                open_prompt_tokens=sum(c.prompt_tokens for c in wire),
                open_s=took,
            )
        )
        return opening

    def respond(self, text: str) -> CounselorTurn:
        """Run and measure one turn."""
        wire_mark, span_mark = self.endpoint.mark(), self.probe.mark()
        model0 = _model_time(self.router)
        cpu0, clock = time.process_time(), time.perf_counter()
        turn = self.inner.respond(text)
        wall = time.perf_counter() - clock
        cpu = time.process_time() - cpu0
        model = _model_time(self.router) - model0
        wire = self.endpoint.since(wire_mark)
        spans = self.probe.since(span_mark)
        self._round += 1
        parts: dict[str, float] = {}
        for span in spans:
            parts[span.label] = parts.get(span.label, 0.0) + span.end - span.start
        by_request: dict[str, int] = {}
        for call in wire:
            name = call.schema or "text"
            by_request[name] = by_request.get(name, 0) + call.prompt_tokens
        recall = [(s.start, s.end) for s in spans if s.label == "recall"]
        perceive = [(c.start, c.end) for c in wire if c.schema == "Perception"]
        hidden = overlap(recall[0], perceive[0]) if recall and perceive else None
        self.turns.append(
            TurnSample(
                session_no=self._session_no,
                round=self._round,
                wall_s=wall,
                model_s=model,
                recorded_model_s=sum(c.latency_s for c in turn.calls),
                cpu_s=cpu,
                recorded_calls=sum(c.attempts for c in turn.calls),
                wire_calls=len(wire),
                in_sequence=calls_in_sequence(wire),
                prompt_tokens=sum(c.prompt_tokens for c in wire),
                completion_tokens=sum(c.completion_tokens for c in wire),
                recorded_prompt_tokens=turn.prompt_tokens,
                recorded_completion_tokens=turn.completion_tokens,
                prompt_by_request=by_request,
                parts=parts,
                fallbacks=list(turn.fallbacks),
                recall_s=recall[0][1] - recall[0][0] if recall else None,
                recall_hidden_s=hidden,
            )
        )
        return turn

    def close_session(self) -> dict[str, Any] | None:
        """Close the inner counselor's session and count its calls."""
        mark = self.endpoint.mark()
        out = self.inner.close_session()
        wire = self.endpoint.since(mark)
        if self.sessions:
            self.sessions[-1].close_calls = len(wire)
            self.sessions[-1].close_prompt_tokens = sum(c.prompt_tokens for c in wire)
        return out

    def rewind(
        self, patient_id: str, profile: PatientProfile, history: Sequence[PastSession]
    ) -> None:
        """Rewind the inner counselor."""
        self.inner.rewind(patient_id, profile, history)

    def model_ids(self) -> dict[str, str]:
        """Return the inner counselor's models."""
        return self.inner.model_ids()

    def close(self) -> None:
        """Close the inner counselor."""
        self.inner.close()

    def samples(self) -> dict[str, list[dict[str, Any]]]:
        """Return every turn and session sample as plain dicts."""
        return {
            "turns": [asdict(t) for t in self.turns],
            "sessions": [asdict(s) for s in self.sessions],
        }


def run_course(
    counselor: MeteredCounselor,
    profile: SimProfile,
    *,
    sessions: int,
    seed: int,
    round_cap: int = 8,
    patient: PatientSettings | None = None,
    strategy_attitudes: dict[str, str] | None = None,
) -> list[SessionResult]:
    """Treat one scripted patient for `sessions` sessions through the orchestrator.

    Raises:
        RuntimeError: a session ended in an error (the original error is chained).
    """
    sim = ScriptedPatient(patient or PatientSettings(), strategy_attitudes=strategy_attitudes)
    orchestrator = Orchestrator(counselor, sim, round_cap=round_cap)
    results = []
    for no in range(1, sessions + 1):
        clock = time.perf_counter()
        rng = random.Random(session_seed(seed, profile.id, no))
        result = orchestrator.run_session(profile, no, rng)
        if result.error is not None:
            raise RuntimeError(
                f"{counselor.kind}: session {no} of {profile.id} failed: {result.error!r}"
            ) from result.error
        if counselor.sessions:
            frame = counselor.sessions[-1]
            frame.rounds = len(result.rounds)
            frame.end_reason = result.end_reason.value
            frame.wall_s = time.perf_counter() - clock
        results.append(result)
    return results
