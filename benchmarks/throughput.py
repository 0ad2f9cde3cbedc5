"""Benchmark experiment throughput: many simulated patients against a slow model server.

TheraMind treats scripted patients for two sessions each; every model role points at a local
OpenAI-compatible stub server that answers each request after a fixed delay (0.2 s by default),
running in its own process like a real server. The same experiment runs at several
concurrency levels; the report gives wall time, sessions per minute, the speed-up over
concurrency 1, and the latency bound: the wall time if only the model delays counted (each
track's calls run one after another, so the longest track bounds the run).

By default it runs the product's defaults: chroma memory with the real embedder
(`use-multilingual-v3`), and a plausible stub (structured answers drawn at random, but calm:
no risk, no wish to end, so session length is the scripted patient's). `--memory chroma` or
`inmemory` swap in the hashing embedder, `--stub random` the stub's raw random answers (about
half the turns then become crises). Every figure is printed with that configuration, the
machine load (os.getloadavg) and a CPU reference loop timed in the same run, so a figure
taken on a busy machine can be read; CPU per turn is this process's CPU time (the stub runs in
another process) over all turns, session openings and closes included (and each patient's
storage set-up); what a server loads once at start (the embedder and the safety screen's
layers) is loaded before the first level and reported apart as `warm_up_cpu_s`.

Run `python benchmarks/throughput.py` (32 patients × 2 sessions at concurrency 1, 8 and 32) or
`--quick` (concurrency 1 is measured on 8 patients, its rate taken as the baseline).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
if importlib.util.find_spec("benchmarks") is None:  # run as a script, not with -m
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from theramind.simulation import ExperimentConfig, ExperimentRunner
from theramind.simulation.profiles import load_profiles
from theramind.simulation.records import SessionLog, TurnLog, read_jsonl

log = logging.getLogger("throughput")

MEMORY_MODES: dict[str, dict[str, str]] = {
    "default": {"backend": "chroma", "embedding_model": "use-multilingual-v3"},
    "chroma": {"backend": "chroma", "embedding_model": "hashing"},
    "inmemory": {"backend": "inmemory", "embedding_model": "hashing"},
}
"""`--memory` choices: the product default, or the hashing embedder on chroma or in memory."""


def cpu_reference_ms(rounds: int = 3) -> float:
    """Return the best of `rounds` timings of a fixed pure-Python loop, in CPU milliseconds.

    On an idle core of this machine it is a constant; a figure beside a larger value was
    taken while other work shared the cores.
    """
    best = math.inf
    for _ in range(rounds):
        started = time.process_time()
        total = 0
        for i in range(300_000):
            total += i * i % 7
        best = min(best, time.process_time() - started)
    return round(best * 1000, 1)


def conditions() -> dict[str, Any]:
    """Return the machine's state now: load averages and the CPU reference loop."""
    one, five, _ = os.getloadavg()
    return {
        "load_1m": round(one, 2),
        "load_5m": round(five, 2),
        "cpus": os.cpu_count(),
        "cpu_reference_ms": cpu_reference_ms(),
    }


def _serve(latency_s: float, queue: Any, stop: Any, stub: str = "plausible") -> None:
    """Run the stub server in this (child) process until `stop` is set."""
    from benchmarks.endpoint import plausible_reply
    from theramind.testing.stub_server import StubConfig, StubServer

    reply = plausible_reply if stub == "plausible" else None
    with StubServer(StubConfig(latency_s=latency_s, reply=reply)) as server:
        queue.put(server.base_url)
        stop.wait()
        queue.put(len(server.requests))


def experiment(
    base_url: str, patients: int, sessions: int, out: Path, memory: str
) -> ExperimentConfig:
    """TheraMind × `patients` scripted patients (profiles × seeds), all roles on the stub."""
    ids = sorted(load_profiles())
    seeds = math.ceil(patients / len(ids))
    per_seed = math.ceil(patients / seeds)
    model = {
        "backend": "openai",
        "base_url": base_url,
        "model": "stub",
        "structured_output": "json_schema",
        "max_tokens_field": "max_tokens",
        "timeout_s": 60,
        "retries": 2,
    }
    memory_cfg = dict(MEMORY_MODES[memory])
    return ExperimentConfig.model_validate(
        {
            "name": "throughput",
            "counselors": ["theramind"],
            "patients": ids[:per_seed],
            "seeds": list(range(seeds)),
            "sessions": sessions,
            "models": {"counselor": model, "patient": model, "judge": model},
            "patient": {"kind": "scripted"},
            "memory": memory_cfg,
            "output_dir": str(out),
        }
    )


def warm_process(exp: ExperimentConfig) -> float:
    """Load once what a server loads once per process; return its CPU seconds.

    The embedder and the safety screen's layers load before any level is timed, and their
    CPU seconds are reported apart.
    """
    from theramind.memory.embeddings import make_embedder
    from theramind.safety import crisis_resources, load_patterns
    from theramind.safety.semantic import semantic_verdict
    from theramind.simulation.experiment import track_settings

    started = time.process_time()
    settings = track_settings(exp, None)
    make_embedder(str(exp.memory.get("embedding_model", "hashing"))).embed(["warm up"])
    for language in settings.safety.languages:
        load_patterns(language, settings.config_dir_path)
    crisis_resources(settings.safety.locale, settings.config_dir_path)
    if settings.safety.semantic:
        semantic_verdict("warm up", settings.config_dir_path)
    return time.process_time() - started


def run_level(
    exp: ExperimentConfig,
    concurrency: int,
    *,
    workers: int = 1,
    backends: Callable[[str], Any] | None = None,
) -> tuple[dict[str, Any], list[SessionLog]]:
    """Run an experiment fresh at one concurrency; return its row of counts and its sessions."""
    out = exp.run_dir
    warm_cpu = warm_process(exp)
    before = conditions()
    started, cpu = time.perf_counter(), time.process_time()
    runner = ExperimentRunner(
        exp, concurrency=concurrency, fresh=True, workers=workers, backends=backends
    )
    summary = runner.run()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    turns = read_jsonl(out / "turns.jsonl", TurnLog)
    done = read_jsonl(out / "sessions.jsonl", SessionLog)
    calls = sum(t.usage["counselor"].calls for t in turns if "counselor" in t.usage)
    row = {
        "concurrency": concurrency,
        "workers": workers,
        "patients": summary.tracks,
        "sessions": len(done),
        "failed_patients": summary.tracks_failed,
        "turns": len(turns),
        "calls_per_turn": round(calls / max(1, len(turns)), 2),
        "wall_s": round(wall, 2),
        "sessions_per_min": round(len(done) / wall * 60, 2),
        "cpu_ms_per_turn": round(cpu * 1000 / max(1, len(turns)), 1) if workers == 1 else None,
        "memory": "{backend}+{embedding_model}".format(**exp.memory),
        "warm_up_cpu_s": round(warm_cpu, 2),
        "conditions_before": before,
        "conditions_after": conditions(),
    }
    return row, done


def measure(
    base_url: str,
    patients: int,
    sessions: int,
    concurrency: int,
    root: Path,
    memory: str,
    workers: int = 1,
    latency: float = 0.2,
) -> dict[str, Any]:
    """Run the experiment once at one concurrency; return timings, counts and the bound."""
    exp = experiment(base_url, patients, sessions, root / f"c{concurrency}-p{patients}", memory)
    row, done = run_level(exp, concurrency, workers=workers)
    per_track: dict[tuple[int, str], int] = {}
    for s in done:
        key = (s.seed, s.patient_id)
        per_track[key] = per_track.get(key, 0) + sum(u.calls for u in s.usage.values())
    # Every call of a track waits for the one before, so no schedule beats this wall time.
    bound = latency * max(max(per_track.values()), sum(per_track.values()) / concurrency)
    return {
        **row,
        "model_calls": sum(per_track.values()),
        "latency_bound_s": round(bound, 2),
        "latency_bound_sessions_per_min": round(len(done) / bound * 60, 2),
    }


def main() -> None:
    """Parse arguments, run the levels, print and save the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=32)
    parser.add_argument("--sessions", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.2, help="Stub delay per request, s.")
    parser.add_argument("--levels", default="1,8,32", help="Concurrency levels, comma-separated.")
    parser.add_argument(
        "--memory",
        choices=tuple(MEMORY_MODES),
        default="default",
        help="default: chroma + the real embedder (the product); chroma/inmemory: hashing",
    )
    parser.add_argument(
        "--stub",
        choices=("plausible", "random"),
        default="plausible",
        help="plausible: calm structured answers; random: the stub's raw draws (many crises)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="Processes for levels above 1 (forked)."
    )
    parser.add_argument("--quick", action="store_true", help="Baseline (c=1) on 8 patients only.")
    parser.add_argument("--out", type=Path, default=None, help="Also write the report here.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    levels = [int(x) for x in args.levels.split(",")]

    ctx = mp.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve, args=(args.latency, queue, stop, args.stub), daemon=True)
    server.start()
    base_url = queue.get(timeout=60)
    rows = []
    config = {
        "memory": "{backend}+{embedding_model}".format(**MEMORY_MODES[args.memory]),
        "stub": args.stub,
        "stub_latency_s": args.latency,
        "sessions_per_patient": args.sessions,
    }
    with tempfile.TemporaryDirectory(prefix="theramind-throughput-") as tmp:
        for level in levels:
            patients = 8 if args.quick and level == 1 else args.patients
            workers = 1 if level == 1 else min(args.workers, level)
            row = measure(
                base_url,
                patients,
                args.sessions,
                level,
                Path(tmp),
                args.memory,
                workers,
                args.latency,
            )
            row["config"] = config
            rows.append(row)
            print(json.dumps(row), flush=True)
    stop.set()
    requests = queue.get(timeout=30)
    server.join(timeout=10)
    base = next((r["sessions_per_min"] for r in rows if r["concurrency"] == 1), None)
    for row in rows:
        row["speedup"] = round(row["sessions_per_min"] / base, 2) if base else None
    report = {
        "benchmark": "throughput",
        "mode": "quick" if args.quick else "full",
        "stub_latency_s": args.latency,
        "config": config,
        "sessions_per_patient": args.sessions,
        "stub_requests": requests,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "levels": rows,
    }
    print()
    print("configuration: " + ", ".join(f"{k}={v}" for k, v in config.items()))
    print(
        f"{'concurrency':>11} {'patients':>8} {'sessions':>8} {'wall s':>8} {'sess/min':>9} "
        f"{'speed-up':>8} {'bound s':>8} {'CPU ms/turn':>11} {'load 1m':>7} {'ref loop ms':>11}"
    )
    for r in rows:
        cond = r["conditions_after"]
        print(
            f"{r['concurrency']:>11} {r['patients']:>8} {r['sessions']:>8} {r['wall_s']:>8} "
            f"{r['sessions_per_min']:>9} {r['speedup']!s:>8} {r['latency_bound_s']:>8} "
            f"{r['cpu_ms_per_turn']!s:>11} {cond['load_1m']:>7} {cond['cpu_reference_ms']:>11}"
        )
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
