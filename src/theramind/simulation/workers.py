"""Running an experiment's tracks in several processes, to use more than one core.

The parent prepares the run directory; each child (a fresh interpreter: forking a process that
holds model or database threads is unsafe) rebuilds the runner from the experiment definition,
runs its share of the tracks and appends to the same JSONL files (one write per record, in
append mode). Progress notices and each child's summary come back through a queue.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import queue as queue_mod
import time
from typing import TYPE_CHECKING, Any

from theramind.simulation.records import RunEvent, TrackKey

if TYPE_CHECKING:
    from theramind.simulation.runner import ExperimentRunner, RunSummary

log = logging.getLogger(__name__)


def _child(
    config: dict[str, Any], out: str, keys: list[dict[str, Any]], concurrency: int, notes: Any
) -> None:
    """Run one share of the tracks in a child process and report back."""
    from theramind.simulation.experiment import ExperimentConfig
    from theramind.simulation.resume import load_state
    from theramind.simulation.runner import ExperimentRunner

    try:
        runner = ExperimentRunner(
            ExperimentConfig.model_validate(config),
            output_dir=out,
            concurrency=concurrency,
            on_progress=lambda note: notes.put(("progress", note)),
        )
        runner.state = load_state(runner.out, compact=False)
        runner.warm()
        wanted = {TrackKey.model_validate(k) for k in keys}
        asyncio.run(runner.run_tracks([t for t in runner.tracks() if t[0] in wanted]))
    except BaseException as exc:  # report anything, then exit
        notes.put(("crash", f"{type(exc).__name__}: {exc}"))
        raise
    notes.put(("summary", runner.summary.model_dump(mode="json")))


def run_in_workers(runner: ExperimentRunner) -> RunSummary:
    """Run the pending tracks over `runner.workers` processes; return the merged summary."""
    from theramind.simulation.runner import RunSummary

    if runner.backends is not None:
        log.warning("injected backends cannot cross processes; running in one process")
        return asyncio.run(runner.arun())
    started = time.perf_counter()
    runner.begin()
    pending = [t[0].model_dump() for t in runner.pending()]
    shares = [s for s in (pending[i :: runner.workers] for i in range(runner.workers)) if s]
    per_worker = max(1, -(-runner.concurrency // max(1, len(shares))))
    ctx = mp.get_context("spawn")
    notes = ctx.Queue()
    config = runner.config.model_dump(mode="json")
    procs = [
        ctx.Process(target=_child, args=(config, str(runner.out), share, per_worker, notes))
        for share in shares
    ]
    for proc in procs:
        proc.start()
    reports = 0
    while reports < len(procs):
        try:
            kind, payload = notes.get(timeout=1.0)
        except queue_mod.Empty:
            if any(p.is_alive() for p in procs):
                continue
            try:
                kind, payload = notes.get(timeout=2.0)
            except queue_mod.Empty:
                break
        if kind == "progress":
            runner.emit(payload)
        elif kind == "summary":
            runner.summary.merge(RunSummary.model_validate(payload))
            reports += 1
        else:
            log.error("a worker process crashed: %s", payload)
            runner.events.append(
                RunEvent(kind="failure", experiment=runner.config.name, error=str(payload))
            )
            reports += 1
    for proc in procs:
        proc.join()
    if reports < len(procs):
        log.error("%d worker process(es) ended without a report", len(procs) - reports)
    runner.finish(started)
    return runner.summary
