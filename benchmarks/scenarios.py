"""The benchmark scenarios: cost per turn and latency, framework overhead, embedded end to end.

Throughput lives in `benchmarks.scale`. Every scenario takes an `Endpoint` (the stub or an
external server), a `Plan` (sizes) and a working directory, and returns a JSON-ready dict:
its figures or summary, and the raw samples they were computed from.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.endpoint import Endpoint
from benchmarks.measure import (
    MeteredCounselor,
    Probe,
    TurnSample,
    distribution,
    mean,
    probe_theramind,
    run_course,
)
from theramind.config import ROLES, Settings, load_config
from theramind.simulation.counselors import Counselor, TheraMindCounselor
from theramind.simulation.experiment import CounselorSpec
from theramind.simulation.factory import build_counselor
from theramind.simulation.patient import PatientSettings
from theramind.simulation.profiles import SimProfile, load_profiles

log = logging.getLogger(__name__)
COUNSELORS = ("theramind", "reference")
REAL_MEMORY: dict[str, Any] = {"backend": "chroma", "embedding_model": "use-multilingual-v3"}
"""The product default memory: chroma with the multilingual embedder."""


@dataclass(frozen=True)
class Plan:
    """How big each scenario is (the defaults are the full benchmark)."""

    patient: str = "anxiety-priya"
    seed: int = 0
    sessions: int = 10
    latency_s: float = 0.2
    compare_at: int = 6
    memory: dict[str, Any] = field(default_factory=lambda: dict(REAL_MEMORY))
    storage: dict[str, Any] = field(default_factory=dict)
    overhead_memories: int = 1000
    overhead_sessions: int = 3
    throughput_patients: int = 32
    throughput_sessions: int = 2
    concurrency: tuple[int, ...] = (1, 8, 32)
    throughput_latency_s: float = 0.2
    embedded_model: str | dict[str, Any] = "embedded"
    embedded_sessions: int = 2
    embedded_turns: int = 4


QUICK = Plan(
    sessions=3,
    latency_s=0.05,
    compare_at=3,
    overhead_memories=200,
    overhead_sessions=1,
    throughput_patients=8,
    throughput_sessions=1,
    concurrency=(1, 4, 8),
    throughput_latency_s=0.05,
)


def bench_settings(
    home: Path,
    model: str | dict[str, Any],
    memory: dict[str, Any],
    storage: dict[str, Any] | None = None,
) -> Settings:
    """Return the default settings with every role on `model`, storage and memory in `home`."""
    base = load_config(None)
    return load_config(
        None,
        models={role: model for role in ROLES},
        storage={**base.storage.model_dump(), **(storage or {}), "home": str(home)},
        memory={**base.memory.model_dump(), **memory, "path": str(home / "chroma")},
    )


def load_patient(plan: Plan, settings: Settings) -> SimProfile:
    """Return the plan's simulated patient profile."""
    profiles = load_profiles(None, settings.taxonomy().therapy_ids)
    return profiles[plan.patient]


def attitudes(settings: Settings) -> dict[str, str]:
    """Return each strategy's attitude (the scripted patient reacts to a misfit)."""
    return {s.id: s.attitude for s in settings.taxonomy().strategies}


def make_counselor(kind: str, settings: Settings, endpoint: Endpoint) -> Counselor:
    """Build a counselor under test ('theramind' or 'reference') on the endpoint."""
    spec = CounselorSpec(name=kind, kind=kind)  # type: ignore[arg-type]
    return build_counselor(spec, settings, backends=endpoint.backends())


def _delta(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float]:
    if not before or not after:
        return {}
    return {k: round(after[k] - before.get(k, 0.0), 1) for k in after}


def warm_up(counselor: Counselor) -> float:
    """Load the embedding model before the clock runs, as a server does at start; return s."""
    memory = counselor.app.services.memory if isinstance(counselor, TheraMindCounselor) else None
    if memory is None:
        return 0.0
    clock = time.perf_counter()
    memory.embedder.embed(["warm up"])
    return time.perf_counter() - clock


def treat(
    kind: str, endpoint: Endpoint, plan: Plan, home: Path, *, sessions: int
) -> tuple[MeteredCounselor, dict[str, float], float]:
    """Treat the plan's patient with one counselor; return the meter, counters and warm-up s."""
    settings = bench_settings(home, endpoint.model(), plan.memory, plan.storage)
    profile = load_patient(plan, settings)
    inner = make_counselor(kind, settings, endpoint)
    warm = warm_up(inner)
    metered = MeteredCounselor(inner, endpoint, Probe())
    if isinstance(inner, TheraMindCounselor):
        probe_theramind(inner, metered.probe)
    before = endpoint.counters()
    try:
        run_course(
            metered,
            profile,
            sessions=sessions,
            seed=plan.seed,
            strategy_attitudes=attitudes(settings),
        )
    finally:
        metered.close()
    return metered, _delta(before, endpoint.counters()), warm


# --- 1 and 2: cost per turn and turn latency ----------------------------------------------------


def _by_request(turns: list[TurnSample]) -> dict[str, float]:
    """Return mean prompt tokens per turn of each kind of request (schema name or 'text')."""
    names = sorted({name for t in turns for name in t.prompt_by_request})
    return {n: round(mean([t.prompt_by_request.get(n, 0) for t in turns]), 1) for n in names}


def session_rows(metered: MeteredCounselor) -> list[dict[str, Any]]:
    """Return one row of calls and prompt tokens per metered session."""
    rows = []
    for frame in metered.sessions:
        turns = [t for t in metered.turns if t.session_no == frame.session_no]
        rows.append(
            {
                "session": frame.session_no,
                "turns": len(turns),
                "recorded_calls_per_turn": round(mean([t.recorded_calls for t in turns]), 2),
                "wire_calls_per_turn": round(mean([t.wire_calls for t in turns]), 2),
                "in_sequence_max": max((t.in_sequence for t in turns), default=0),
                "prompt_tokens_per_turn": round(mean([t.prompt_tokens for t in turns]), 1),
                "completion_tokens_per_turn": round(mean([t.completion_tokens for t in turns]), 1),
                "recorded_prompt_tokens_per_turn": round(
                    mean([t.recorded_prompt_tokens for t in turns]), 1
                ),
                "prompt_tokens_by_request": _by_request(turns),
                "open_calls": frame.open_calls,
                "close_calls": frame.close_calls,
                "end_reason": frame.end_reason,
            }
        )
    return rows


def by_position(turns: list[TurnSample]) -> dict[str, list[int]]:
    """Return each session's prompt tokens per turn, in turn order (key: the session number)."""
    out: dict[str, list[int]] = {}
    for t in sorted(turns, key=lambda t: (t.session_no, t.round)):
        out.setdefault(str(t.session_no), []).append(t.prompt_tokens)
    return out


def positional_growth(result: dict[str, Any], last: int) -> tuple[float | None, int]:
    """Return session `last` ÷ session 1 over turns at equal positions, and how many positions.

    Only the first K turns count, K being the shortest session of the course, so every session
    compared has the same length and turn k is compared with turn k: a prompt that grows
    within a session cannot move the ratio with the sessions' lengths.
    """
    rows = result["cost"].get("prompt_tokens_by_position") or {}
    first, final = rows.get("1"), rows.get(str(last))
    if not first or not final:
        return None, 0
    k = min(len(r) for r in rows.values())
    base = sum(first[:k])
    return (round(sum(final[:k]) / base, 3) if base else None), k


def _cost_summary(metered: MeteredCounselor, counters: dict[str, float]) -> dict[str, Any]:
    turns = metered.turns
    frame_calls = sum(s.open_calls + s.close_calls for s in metered.sessions)
    wire_tokens = sum(t.prompt_tokens for t in turns)
    recorded_tokens = sum(t.recorded_prompt_tokens for t in turns)
    return {
        "turns": len(turns),
        "calls_per_turn_max": max((t.wire_calls for t in turns), default=0),
        "calls_per_turn_mean": round(mean([t.wire_calls for t in turns]), 2),
        "recorded_calls_per_turn_max": max((t.recorded_calls for t in turns), default=0),
        "turns_where_record_and_wire_differ": sum(t.recorded_calls != t.wire_calls for t in turns),
        "in_sequence_max": max((t.in_sequence for t in turns), default=0),
        "in_sequence_mean": round(mean([t.in_sequence for t in turns]), 2),
        "calls_per_turn_with_open_and_close": round(
            (sum(t.wire_calls for t in turns) + frame_calls) / max(1, len(turns)), 2
        ),
        "prompt_tokens_wire": wire_tokens,
        "prompt_tokens_recorded": recorded_tokens,
        "prompt_tokens_by_position": by_position(turns),
        "server_counters": counters,
        "sessions": session_rows(metered),
    }


def _latency_summary(turns: list[TurnSample], injected: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "wall_ms": distribution([t.wall_s for t in turns], 1000),
        "model_ms": distribution([t.model_s for t in turns], 1000),
    }
    if injected:
        out["wall_over_injected_p50"] = round(
            distribution([t.wall_s / injected for t in turns])["p50"], 2
        )
    recalls = [t for t in turns if t.recall_s is not None]
    if recalls:
        hidden = [t.recall_hidden_s or 0.0 for t in recalls]
        out["recall"] = {
            "turns": len(recalls),
            "overlapped_turns": sum(h > 0 for h in hidden),
            "recall_ms": distribution([t.recall_s or 0.0 for t in recalls], 1000),
            "hidden_ms": distribution(hidden, 1000),
            "hidden_share": round(
                sum(hidden) / max(1e-9, sum(t.recall_s or 0 for t in recalls)), 3
            ),
        }
    return out


def cost_and_latency(endpoint: Endpoint, plan: Plan, workdir: Path) -> dict[str, Any]:
    """Scenarios 1 and 2: one patient, N sessions, TheraMind beside the reference baseline."""
    injected = endpoint.set_latency(plan.latency_s)
    results: dict[str, Any] = {}
    for kind in COUNSELORS:
        clock = time.perf_counter()
        metered, counters, warm = treat(
            kind, endpoint, plan, workdir / kind, sessions=plan.sessions
        )
        results[kind] = {
            "embedder_warmup_s": round(warm, 2),
            "cost": _cost_summary(metered, counters),
            "latency": _latency_summary(metered.turns, injected),
            "wall_s": round(time.perf_counter() - clock, 2),
            "samples": metered.samples(),
        }
        log.info("cost: %s done in %.1fs", kind, time.perf_counter() - clock)
    return {
        "patient": plan.patient,
        "seed": plan.seed,
        "sessions": plan.sessions,
        "injected_latency_s": injected,
        "memory": plan.memory,
        "counselors": results,
        "figures": cost_figures(results, plan),
    }


def _prompt_at(result: dict[str, Any], session: int) -> float | None:
    for row in result["cost"]["sessions"]:
        if row["session"] == session:
            return float(row["prompt_tokens_per_turn"])
    return None


def slope(result: dict[str, Any], first: int = 2) -> float | None:
    """Return the least-squares change of prompt tokens per turn per session, from `first` on."""
    points = [
        (row["session"], row["prompt_tokens_per_turn"])
        for row in result["cost"]["sessions"]
        if row["session"] >= first
    ]
    if len(points) < 2:
        return None
    mx = mean([x for x, _ in points])
    my = mean([y for _, y in points])
    var = sum((x - mx) ** 2 for x, _ in points)
    return round(sum((x - mx) * (y - my) for x, y in points) / var, 1)


def cost_figures(results: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """Return the headline ratios: prompt growth over sessions, TheraMind vs the reference."""
    ours, ref = results["theramind"], results["reference"]
    first, last = _prompt_at(ours, 1), _prompt_at(ours, plan.sessions)
    second = _prompt_at(ours, 2) if plan.sessions > 2 else None
    at = min(plan.compare_at, plan.sessions)
    ours_at, ref_at = _prompt_at(ours, at), _prompt_at(ref, at)
    ref_first, ref_last = _prompt_at(ref, 1), _prompt_at(ref, plan.sessions)
    equal, positions = positional_growth(ours, plan.sessions)
    ref_equal, _ = positional_growth(ref, plan.sessions)
    return {
        "growth_equal_position": equal,
        "reference_growth_equal_position": ref_equal,
        "equal_length_turns": positions,
        "growth_last_over_first": round(last / first, 3) if first and last else None,
        "reference_growth_last_over_first": (
            round(ref_last / ref_first, 3) if ref_first and ref_last else None
        ),
        "growth_last_over_second": round(last / second, 3) if second and last else None,
        "slope_per_session_from_2": slope(ours),
        "reference_slope_per_session_from_2": slope(ref),
        "compare_at_session": at,
        "theramind_over_reference": round(ours_at / ref_at, 3) if ours_at and ref_at else None,
        "calls_per_turn_max": ours["cost"]["calls_per_turn_max"],
        "in_sequence_max": ours["cost"]["in_sequence_max"],
        "reference_calls_per_turn_mean": ref["cost"]["calls_per_turn_mean"],
    }


# --- 3: framework overhead ------------------------------------------------------------------------


def seed_memories(counselor: TheraMindCounselor, patient_id: str, count: int, seed: int) -> int:
    """Store `count` varied memories for one patient in bulk; return how many it holds."""
    from benchmarks.memory_bench import distractors, fill

    memory = counselor.app.services.memory
    if memory is None or count <= 0:
        return 0
    rng = random.Random(seed)
    texts = distractors(count, rng)
    fill(memory, patient_id, texts, memory.embedder.embed(texts), 5, rng)
    return memory.count(patient_id)


def overhead(endpoint: Endpoint, plan: Plan, workdir: Path) -> dict[str, Any]:
    """Scenario 3: everything but the model, per turn, with a patient holding many memories."""
    injected = endpoint.set_latency(0.0)
    settings = bench_settings(workdir / "overhead", endpoint.model(), plan.memory, plan.storage)
    profile = load_patient(plan, settings)
    inner = make_counselor("theramind", settings, endpoint)
    if not isinstance(inner, TheraMindCounselor):
        raise TypeError("the overhead scenario measures TheraMind")
    warmup_s = warm_up(inner)
    clock = time.perf_counter()
    stored = seed_memories(inner, profile.id, plan.overhead_memories, plan.seed)
    seeding_s = time.perf_counter() - clock
    metered = MeteredCounselor(inner, endpoint, Probe())
    probe_theramind(inner, metered.probe)
    try:
        run_course(
            metered,
            profile,
            sessions=plan.overhead_sessions,
            seed=plan.seed,
            strategy_attitudes=attitudes(settings),
        )
    finally:
        metered.close()
    cold, warm = metered.turns[:1], metered.turns[1:] or metered.turns
    parts = sorted({label for t in warm for label in t.parts})
    return {
        "patient": plan.patient,
        "memories_at_start": stored,
        "seeding_s": round(seeding_s, 1),
        "embedder_warmup_s": round(warmup_s, 2),
        "injected_latency_s": injected,
        "memory": plan.memory,
        "checkpointer": settings.storage.checkpointer,
        "summary": {
            "turns": len(warm),
            "overhead_ms": distribution([t.wall_s - t.model_s for t in warm], 1000),
            "overhead_by_recorded_calls_ms": distribution(
                [t.wall_s - t.recorded_model_s for t in warm], 1000
            ),
            "cpu_ms": distribution([t.cpu_s for t in warm], 1000),
            "wall_ms": distribution([t.wall_s for t in warm], 1000),
            "model_ms": distribution([t.model_s for t in warm], 1000),
            "parts_ms": {
                label: distribution([t.parts.get(label, 0.0) for t in warm], 1000)
                for label in parts
            },
            "cold_first_turn_overhead_ms": round((cold[0].wall_s - cold[0].model_s) * 1000, 1)
            if cold
            else None,
        },
        "samples": metered.samples(),
    }


# --- 5: the embedded model end to end ------------------------------------------------------------


def embedded(endpoint: Endpoint, plan: Plan, workdir: Path) -> dict[str, Any]:
    """Scenario 5: one patient, a few short sessions, every agent on the endpoint's model.

    The clock starts before the counselor is built, so it includes loading the model (which
    happens on the first call) and the embedder.
    """
    clock, cpu = time.perf_counter(), time.process_time()
    settings = bench_settings(workdir / "embedded", endpoint.model(), plan.memory, plan.storage)
    profile = load_patient(plan, settings)
    inner = make_counselor("theramind", settings, endpoint)
    metered = MeteredCounselor(inner, endpoint, Probe())
    patient = PatientSettings(close_after=(plan.embedded_turns, plan.embedded_turns))
    try:
        run_course(
            metered,
            profile,
            sessions=plan.embedded_sessions,
            seed=plan.seed,
            round_cap=plan.embedded_turns,
            patient=patient,
            strategy_attitudes=attitudes(settings),
        )
        usage = metered.router.meter.snapshot().get("counselor", {})
        model_ids = metered.model_ids()
    finally:
        metered.close()
    wall, cpu = time.perf_counter() - clock, time.process_time() - cpu
    model_s = float(usage.get("latency_s", 0.0))
    completion = int(usage.get("completion_tokens", 0))
    prompt = int(usage.get("prompt_tokens", 0))
    return {
        "model": model_ids.get("counselor", ""),
        "summary": {
            "sessions": len(metered.sessions),
            "turns": len(metered.turns),
            "turns_per_session": [s.rounds for s in metered.sessions],
            "end_reasons": [s.end_reason for s in metered.sessions],
            "calls": int(usage.get("calls", 0)),
            "failures": int(usage.get("failures", 0)),
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "first_open_s": round(metered.sessions[0].open_s, 1) if metered.sessions else None,
            "model_s": round(model_s, 1),
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "completion_tokens_per_model_s": round(completion / model_s, 1) if model_s else None,
            "tokens_per_wall_s": round((prompt + completion) / wall, 1) if wall else None,
            "turn_wall_s": distribution([t.wall_s for t in metered.turns]),
            "turns_with_fallback": sum(1 for t in metered.turns if t.fallbacks),
        },
        "samples": {"sessions": [asdict(s) for s in metered.sessions]},
    }
