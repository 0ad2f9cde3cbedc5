"""Scenario 4, throughput: many patients at several concurrency levels, one model endpoint.

The experiment and its measurement are those of `benchmarks/throughput.py`; this module runs
them on the benchmark's endpoint, cross-checks the calls against the endpoint's log, and adds
the per-turn latency each level produced.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from benchmarks import throughput as shared
from benchmarks.endpoint import Endpoint, StubEndpoint
from benchmarks.measure import distribution
from benchmarks.scenarios import Plan
from theramind.config import ROLES
from theramind.simulation.records import TurnLog, read_jsonl

log = logging.getLogger(__name__)
MEMORY = "default"
"""The memory mode of the shared throughput experiment: the product's (chroma + real embedder)."""


def _external_level(
    endpoint: Endpoint, patients: int, sessions: int, concurrency: int, root: Path
) -> dict[str, Any]:
    """Run the shared experiment with every role on an external server's model."""
    exp = shared.experiment(
        "http://unused", patients, sessions, root / f"c{concurrency}-p{patients}", MEMORY
    )
    exp = exp.model_copy(update={"models": {role: endpoint.model() for role in ROLES}})
    row, _ = shared.run_level(exp, concurrency, backends=lambda _key: endpoint.backends())
    return row


def throughput(endpoint: Endpoint, plan: Plan, workdir: Path) -> dict[str, Any]:
    """Scenario 4: the same patients at each concurrency level; speed-up over concurrency 1."""
    injected = endpoint.set_latency(plan.throughput_latency_s)
    rows = []
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    for level in plan.concurrency:
        mark, cpu = endpoint.mark(), time.process_time()
        if isinstance(endpoint, StubEndpoint):
            row = shared.measure(
                endpoint.base_url,
                plan.throughput_patients,
                plan.throughput_sessions,
                level,
                workdir,
                MEMORY,
            )
        else:
            row = _external_level(
                endpoint, plan.throughput_patients, plan.throughput_sessions, level, workdir
            )
        cpu = time.process_time() - cpu
        row["cpu_s"] = round(cpu, 1)
        row["cpu_share"] = round(cpu / (row["wall_s"] * (cores or 1)), 2) if row["wall_s"] else None
        row["wire_calls"] = len(endpoint.since(mark))
        turns_file = workdir / f"c{level}-p{plan.throughput_patients}" / "turns.jsonl"
        latencies = [t.response.latency_s for t in read_jsonl(turns_file, TurnLog)]
        row["turn_latency_ms"] = distribution(latencies, 1000)
        row["turns_per_s"] = round(row["turns"] / row["wall_s"], 2) if row["wall_s"] else None
        rows.append(row)
        log.info("throughput: concurrency %d: %.1fs", level, row["wall_s"])
    base = next((r["sessions_per_min"] for r in rows if r["concurrency"] == 1), None)
    for row in rows:
        row["speedup"] = round(row["sessions_per_min"] / base, 2) if base else None
    top = max(rows, key=lambda r: r["concurrency"]) if rows else None
    return {
        "patients": plan.throughput_patients,
        "sessions_per_patient": plan.throughput_sessions,
        "injected_latency_s": injected,
        "memory": shared.MEMORY_MODES[MEMORY],
        "conditions": shared.conditions(),
        "levels": rows,
        "figures": {
            "top_concurrency": top["concurrency"] if top else None,
            "speedup_at_top": top["speedup"] if top else None,
        },
    }
