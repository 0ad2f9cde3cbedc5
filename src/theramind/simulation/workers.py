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
import os
import queue as queue_mod
import signal
import time
from typing import TYPE_CHECKING, Any

from theramind.simulation.orchestrator import DRAIN_S
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
    except KeyboardInterrupt:  # Ctrl-C: the tracks have let their calls finish; say so, quietly
        notes.put(("interrupted", ""))
        return
    except BaseException as exc:  # report anything, then exit
        notes.put(("crash", f"{type(exc).__name__}: {exc}"))
        raise
    notes.put(("summary", runner.summary.model_dump(mode="json")))


def run_in_workers(runner: ExperimentRunner) -> RunSummary:
    """Run the pending tracks over `runner.workers` processes; return the merged summary."""
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
    try:
        _collect(runner, procs, notes)
    except KeyboardInterrupt:
        _stop(procs)
        runner.finish(started, interrupted=True)
        raise
    runner.finish(started)
    return runner.summary


def _stop(procs: list[Any]) -> None:
    """Pass a Ctrl-C on to the children and wait for them to finish their calls in flight."""
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + DRAIN_S
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            log.error("worker %s did not stop in %.0fs; terminating it", proc.pid, DRAIN_S)
            proc.terminate()
            proc.join()


def _collect(runner: ExperimentRunner, procs: list[Any], notes: Any) -> None:
    """Relay the children's notices until each has reported (or ended without a word)."""
    from theramind.simulation.runner import RunSummary

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
        elif kind == "interrupted":
            raise KeyboardInterrupt
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
