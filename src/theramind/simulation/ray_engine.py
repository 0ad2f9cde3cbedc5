"""Experiments on Ray: each patient's course is a Ray task, and this process writes every record.

The driver (the `simulate` process) prepares the run directory as the local engine does, then
submits one task per pending course (counselor × seed × patient); a course runs its sessions
in order, courses run in parallel as the cluster's CPUs allow (each task takes one). Records
travel through a *ledger*, a small actor on the driver's node:

- a task starting (or restarting) a course asks the ledger for the sessions the course has
  completed and resumes after the last of them, rewinding the track's store to that point;
- a task finishing a session commits the session with its rounds in one call; the ledger takes
  it only if it is the course's next session, so a session committed by an attempt that died
  afterwards, or by a stray second attempt, is never taken twice;
- the driver drains the ledger a few times a second and appends what it took to the run's
  JSONL, as the one writer; rounds in progress come through as progress notices only.

A worker that dies mid-course (killed, out of memory, its node lost) is retried by Ray
(`max_retries`); the new attempt resumes after the last committed session and redoes the
session that was cut short, as a rerun of the local engine does. Each course keeps its
storage home under the run directory (`homes/<track>`), which every node must see at the same
path (one machine, or a shared filesystem); a task that cannot see it fails its course with a
message saying so.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from theramind.errors import ConfigError, TheraMindError
from theramind.simulation.experiment import ExperimentConfig
from theramind.simulation.records import EndReason, RunEvent, SessionLog, TrackKey, TurnLog
from theramind.simulation.resume import RunState
from theramind.simulation.runner import ExperimentRunner, Progress, RunSummary

log = logging.getLogger(__name__)

MAX_RETRIES = 3
"""How many times Ray restarts a course whose worker died."""
DRAIN_S = 0.2
"""How often the driver collects committed sessions and progress from the ledger."""
RAY_MISSING = (
    "the Ray engine needs Ray: install it with `pip install 'theramind[ray]'` (or run without "
    "--engine ray)"
)

Course = list[dict[str, Any]]
"""A course's completed sessions as plain data: {"session": SessionLog, "turns": [TurnLog]}."""


def import_ray() -> Any:
    """Return the `ray` module, or raise a `ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(RAY_MISSING) from exc
    return ray


class Ledger:
    """The courses' completed sessions and the driver's outbox (a Ray actor on the driver's node).

    It takes each session exactly once, in order, whichever attempt of a course sends it.
    """

    def __init__(self, courses: dict[str, Course]) -> None:
        self._courses = courses
        self._starts: dict[str, int] = {}
        self._outbox: list[tuple[str, str, dict[str, Any]]] = []

    def begin(self, slug: str, where: dict[str, Any]) -> tuple[int, Course]:
        """Count an attempt at a course; return its number and the sessions done so far."""
        attempt = self._starts[slug] = self._starts.get(slug, 0) + 1
        done = self._courses.get(slug, [])
        if attempt > 1:
            self._outbox.append(("retry", slug, {**where, "attempt": attempt, "done": len(done)}))
        return attempt, list(done)

    def note(self, slug: str, session_no: int, tokens: int) -> None:
        """Pass on a round in progress (for the progress display; not a record)."""
        self._outbox.append(("round", slug, {"session_no": session_no, "tokens": tokens}))

    def commit(self, slug: str, session: dict[str, Any], turns: list[dict[str, Any]]) -> bool:
        """Take a finished session with its rounds if it is the course's next; say if taken."""
        done = self._courses.setdefault(slug, [])
        if session.get("session_no") != len(done) + 1:
            return False
        entry = {"session": session, "turns": turns}
        done.append(entry)
        self._outbox.append(("session", slug, entry))
        return True

    def drain(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Return what happened since the last drain, oldest first."""
        out, self._outbox = self._outbox, []
        return out


def course_state(key: TrackKey, course: Course) -> RunState:
    """Rebuild a course's completed sessions as the runner's resume state."""
    state = RunState()
    sessions = [SessionLog.model_validate(c["session"]) for c in course]
    if sessions:
        state.done[key] = sessions
    for c, s in zip(course, sessions, strict=True):
        state.turns[(key, s.session_no)] = [TurnLog.model_validate(t) for t in c["turns"]]
    return state


class CourseRunner(ExperimentRunner):
    """Runs one course inside a Ray task, sending its records to the ledger instead of files."""

    def __init__(
        self, config: ExperimentConfig, out: Path, key: TrackKey, ledger: Any, course: Course
    ) -> None:
        super().__init__(config, output_dir=out, concurrency=1)
        self.key = key
        self.ledger = ledger
        self.state = course_state(key, course)
        self.buffer: list[TurnLog] = []
        self.failure: tuple[int | None, str, str | None] | None = None
        self.duplicates = 0

    def record_turn(self, turn: TurnLog, *, notify: bool = True) -> None:
        """Keep a round until its session ends; tell the driver about it."""
        self.buffer.append(turn)
        tokens = sum(u.prompt_tokens + u.completion_tokens for u in turn.usage.values())
        self.ledger.note.remote(self.key.slug, turn.session_no, tokens)

    def record_session(self, session: SessionLog) -> None:
        """Commit a finished session with its rounds to the ledger (and wait until it is in)."""
        ray = import_ray()
        turns = [
            t.model_dump(mode="json") for t in self.buffer if t.session_no == session.session_no
        ]
        self.buffer.clear()
        taken = ray.get(
            self.ledger.commit.remote(self.key.slug, session.model_dump(mode="json"), turns)
        )
        if not taken:
            self.duplicates += 1
            log.warning(
                "course %s: session %d was already committed; this copy is dropped",
                self.key.slug,
                session.session_no,
            )

    def record_failure(
        self,
        key: TrackKey,
        session_no: int | None,
        error: str,
        end_reason: EndReason | None = None,
    ) -> None:
        """Keep the failure for the driver to record."""
        self.failure = (session_no, error, end_reason.value if end_reason else None)

    def run_course(self) -> dict[str, Any]:
        """Run the course's remaining sessions; return its outcome for the driver."""
        self.warm()
        track = [t for t in self.tracks() if t[0] == self.key]
        if not track:
            raise ConfigError(
                f"course {self.key.slug} is not part of experiment {self.config.name}"
            )
        asyncio.run(self.run_tracks(track))
        return {
            "failure": self.failure,
            "endpoints": self.summary.endpoints,
            "duplicates": self.duplicates,
        }


def run_course(
    config: dict[str, Any], out: str, fingerprint: str, key: dict[str, Any], ledger: Any
) -> dict[str, Any]:
    """Ray task: run (or resume) one course; its sessions go to the ledger as they finish."""
    ray = import_ray()
    track = TrackKey.model_validate(key)
    run_dir = Path(out)
    check_run_dir(run_dir, fingerprint)
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    where["node"] = ray.get_runtime_context().get_node_id()
    attempt, course = ray.get(ledger.begin.remote(track.slug, where))
    if attempt > 1:
        log.warning(
            "course %s: attempt %d resumes after session %d", track.slug, attempt, len(course)
        )
    runner = CourseRunner(ExperimentConfig.model_validate(config), run_dir, track, ledger, course)
    return runner.run_course()


def check_run_dir(out: Path, fingerprint: str) -> None:
    """Fail with what to do when this node cannot see the run directory of the driver.

    Raises:
        ConfigError: the run directory is missing here or holds another run.
    """
    import json

    header = out / "run.json"
    try:
        seen = json.loads(header.read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"the Ray worker on {socket.gethostname()} cannot read {header} ({exc}); the run "
            "directory must be on a filesystem every node mounts at the same path"
        ) from exc
    if seen != fingerprint:
        raise ConfigError(
            f"{header} on {socket.gethostname()} belongs to another run; give the run an "
            "output directory every node sees as the same one"
        )


# -- the driver ---------------------------------------------------------------------------------


def connect(ray: Any, address: str | None) -> bool:
    """Join the cluster at `address` (or start a local one); return whether this call joined."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except ConnectionError as exc:
        raise ConfigError(
            f"cannot reach the Ray cluster at {address}: {exc}. Start one with `ray start "
            "--head`, or leave --address out to run on a local one"
        ) from exc
    return True


def run_on_ray(runner: ExperimentRunner, *, max_retries: int = MAX_RETRIES) -> RunSummary:
    """Run the pending courses of `runner`'s experiment as Ray tasks; write every record here."""
    ray = import_ray()
    if runner.backends is not None:
        raise ConfigError(
            "model backends passed in code cannot travel to Ray workers; name the models in "
            "the experiment (`models:`) to run it on Ray"
        )
    started = time.perf_counter()
    joined = connect(ray, runner.address)  # a wrong address fails before the run dir is touched
    try:
        runner.begin()
        _drive(ray, runner, started, max_retries)
    finally:
        if joined:
            ray.shutdown()
    return runner.summary


def _drive(ray: Any, runner: ExperimentRunner, started: float, max_retries: int) -> None:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    pending = runner.pending()
    keys = {key.slug: key for key, _, _ in pending}
    courses = {
        key.slug: [
            {
                "session": s.model_dump(mode="json"),
                "turns": [
                    t.model_dump(mode="json")
                    for t in runner.state.turns.get((key, s.session_no), [])
                ],
            }
            for s in runner.state.completed(key)
        ]
        for key, _, _ in pending
    }
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    ledger = (
        ray.remote(Ledger)
        .options(num_cpus=0, max_restarts=0, scheduling_strategy=here)
        .remote(courses)
    )
    task = ray.remote(run_course).options(
        num_cpus=1, max_retries=max_retries, retry_exceptions=False
    )
    config = runner.config.model_dump(mode="json")
    fingerprint = runner.config.fingerprint()
    refs = {
        task.remote(config, str(runner.out.resolve()), fingerprint, key.model_dump(), ledger): key
        for key, _, _ in pending
    }
    log.info("%d courses submitted to Ray", len(refs))
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=DRAIN_S)
            _apply(runner, keys, _drain(ray, ledger))
            for ref in ready:
                _settle(ray, runner, refs.pop(ref), ref, max_retries)
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref)
        try:
            _apply(runner, keys, _drain(ray, ledger))
        finally:
            runner.finish(started, interrupted=True)
        raise
    except TheraMindError:  # the ledger is gone: stop the courses, judge what is on record
        for ref in refs:
            ray.cancel(ref, force=True)
        runner.finish(started, interrupted=True)
        raise
    runner.finish(started)


def _drain(ray: Any, ledger: Any) -> list[tuple[str, str, dict[str, Any]]]:
    try:
        items: list[tuple[str, str, dict[str, Any]]] = ray.get(ledger.drain.remote())
    except ray.exceptions.RayError as exc:
        raise TheraMindError(
            f"the run's ledger on this node stopped ({exc}); the sessions written so far are "
            "kept: rerun the same command to resume"
        ) from exc
    return items


def _apply(
    runner: ExperimentRunner,
    keys: Mapping[str, TrackKey],
    items: list[tuple[str, str, dict[str, Any]]],
) -> None:
    """Write committed sessions and pass progress on, in the order they happened."""
    for kind, slug, data in items:
        key = keys[slug]
        if kind == "round":
            runner.emit(Progress("round", key, data["session_no"], tokens=data["tokens"]))
        elif kind == "session":
            for turn in data["turns"]:
                runner.record_turn(TurnLog.model_validate(turn), notify=False)
            runner.record_session(SessionLog.model_validate(data["session"]))
        elif kind == "retry":
            log.warning("course %s restarted by Ray (attempt %s)", slug, data.get("attempt"))
            runner.events.append(
                RunEvent(
                    kind="retry",
                    experiment=runner.config.name,
                    counselor=key.counselor,
                    seed=key.seed,
                    patient_id=key.patient_id,
                    session_no=int(data.get("done", 0)) + 1,
                    detail=data,
                )
            )


def _settle(ray: Any, runner: ExperimentRunner, key: TrackKey, ref: Any, retries: int) -> None:
    """Record how a course's task ended: done, failed in a session, or lost for good."""
    try:
        outcome: dict[str, Any] = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # the task raised: not retried, say why
        cause = exc.cause if exc.cause is not None else exc
        log.error("course %s failed: %s", key.slug, cause)
        runner.record_failure(key, None, f"{type(cause).__name__}: {cause}")
        return
    except ray.exceptions.RayError as exc:  # its worker kept dying: retries spent
        log.error("course %s lost after %d retries: %s", key.slug, retries, exc)
        runner.record_failure(
            key, None, f"{type(exc).__name__}: {exc}", EndReason.INFRASTRUCTURE_ERROR
        )
        return
    runner.summary.add_endpoints(outcome.get("endpoints") or {})
    failure = outcome.get("failure")
    if failure is not None:
        session_no, error, reason = failure
        log.error("course %s failed in session %s: %s", key.slug, session_no, error)
        runner.record_failure(key, session_no, error, EndReason(reason) if reason else None)
        return
    runner.emit(Progress("track_done", key))
