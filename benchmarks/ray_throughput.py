"""Benchmark experiments on Ray: throughput with 1, 2 and 4 worker processes, 1 and 2 endpoints.

TheraMind treats scripted patients for two sessions each with `simulate --engine ray`: every
course is a Ray task, and a local Ray instance with N CPUs runs at most N courses at once, in
N worker processes. Every model role points at OpenAI-compatible stub servers, each in its
own process, answering after a fixed delay (0.2 s) with calm plausible answers; each stub
works on at most `--capacity` requests at once (a replica's batch), the rest queue, so a
second endpoint adds capacity as a second replica would. The worker processes are started and
have imported the framework before the clock starts. Each row gives wall time, sessions per
minute, the speed-up over one worker and one endpoint, the calls each endpoint served, and the
machine load (os.getloadavg) before and after, so a figure taken on a busy machine can be read.

Run `python benchmarks/ray_throughput.py` (8 patients × 2 sessions; `--workers 1,2,4
--endpoints 1,2`), or `--quick` (4 patients).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
if importlib.util.find_spec("benchmarks") is None:  # run as a script, not with -m
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.throughput import conditions, experiment
from theramind.simulation import ExperimentConfig, ExperimentRunner

log = logging.getLogger("ray_throughput")
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _serve(latency_s: float, capacity: int, queue: Any, stop: Any) -> None:
    """Run one stub server (one replica) in this child process until `stop` is set."""
    from benchmarks.endpoint import plausible_reply
    from theramind.testing.stub_server import StubConfig, StubServer

    config = StubConfig(latency_s=latency_s, reply=plausible_reply, capacity=capacity or None)
    with StubServer(config) as server:
        queue.put(server.base_url)
        stop.wait()


def _warm(seconds: float) -> int:
    """Import the framework in a Ray worker (and hold it a moment, so each worker gets one)."""
    import theramind.simulation.ray_engine  # noqa: F401

    time.sleep(seconds)
    return os.getpid()


def run_row(exp: ExperimentConfig, workers: int, endpoints: int) -> dict[str, Any]:
    """Run the experiment fresh on the current Ray instance; return its row."""
    before = conditions()
    started = time.perf_counter()
    summary = ExperimentRunner(exp, fresh=True, engine="ray").run()
    wall = time.perf_counter() - started
    return {
        "workers": workers,
        "endpoints": endpoints,
        "patients": summary.tracks,
        "sessions": summary.sessions_done,
        "failed_patients": summary.tracks_failed,
        "turns": summary.turns_run,
        "wall_s": round(wall, 2),
        "sessions_per_min": round(summary.sessions_done / wall * 60, 2),
        "calls_per_endpoint": {u: int(c["calls"]) for u, c in sorted(summary.endpoints.items())},
        "failed_calls": int(sum(c["failures"] for c in summary.endpoints.values())),
        "conditions_before": before,
        "conditions_after": conditions(),
    }


def main() -> None:
    """Parse arguments, run the grid, print and save the report."""
    import ray

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--sessions", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.2, help="Stub delay per request, s.")
    parser.add_argument("--capacity", type=int, default=2, help="Requests a stub serves at once.")
    parser.add_argument("--workers", default="1,2,4", help="Ray worker processes, comma-separated.")
    parser.add_argument("--endpoints", default="1,2", help="Endpoints per role, comma-separated.")
    parser.add_argument("--memory", default="chroma", choices=("default", "chroma", "inmemory"))
    parser.add_argument("--quick", action="store_true", help="4 patients.")
    parser.add_argument("--out", type=Path, default=None, help="Also write the report here.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # Ray's worker processes inherit this: they import the framework from the same tree.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
    worker_levels = [int(x) for x in args.workers.split(",")]
    endpoint_levels = [int(x) for x in args.endpoints.split(",")]
    patients = 4 if args.quick else args.patients

    ctx = mp.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    servers = [
        ctx.Process(target=_serve, args=(args.latency, args.capacity, queue, stop), daemon=True)
        for _ in range(max(endpoint_levels))
    ]
    for server in servers:
        server.start()
    urls = [queue.get(timeout=60) for _ in servers]
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="theramind-ray-throughput-") as tmp:
            for workers in worker_levels:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
                try:
                    ray.get([ray.remote(_warm).remote(1.0) for _ in range(workers)])
                    for n in endpoint_levels:
                        out = Path(tmp) / f"w{workers}-e{n}"
                        base_url: Any = urls[0] if n == 1 else urls[:n]
                        exp = experiment(base_url, patients, args.sessions, out, args.memory)
                        row = run_row(exp, workers, n)
                        rows.append(row)
                        print(json.dumps(row), flush=True)
                finally:
                    ray.shutdown()
    finally:
        stop.set()
        for server in servers:
            server.join(timeout=10)
    base = next((r for r in rows if r["workers"] == 1 and r["endpoints"] == 1), rows[0])
    for row in rows:
        row["speedup"] = round(row["sessions_per_min"] / base["sessions_per_min"], 2)
    report = {
        "config": {
            "patients": patients,
            "sessions_per_patient": args.sessions,
            "stub_latency_s": args.latency,
            "stub_capacity": args.capacity,
            "memory": args.memory,
            "cpus": os.cpu_count(),
        },
        "rows": rows,
    }
    print()
    print("workers endpoints sessions  wall_s  sess/min  speedup  calls per endpoint   load")
    for r in rows:
        calls = "/".join(str(c) for c in r["calls_per_endpoint"].values())
        load = f"{r['conditions_before']['load_1m']}->{r['conditions_after']['load_1m']}"
        print(
            f"{r['workers']:>7} {r['endpoints']:>9} {r['sessions']:>8} {r['wall_s']:>7} "
            f"{r['sessions_per_min']:>9} {r['speedup']:>8}  {calls:<19} {load}"
        )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
