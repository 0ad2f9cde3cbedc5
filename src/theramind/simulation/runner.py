"""The experiment runner.

Tracks (counselor × seed × patient) run concurrently, records stream to
JSONL as they happen, and a rerun resumes where the last one stopped.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from theramind.errors import SimulationError
from theramind.llm import BaseBackend, ModelRouter
from theramind.llm.backends import interrupt_backends
from theramind.records import CallUsage
from theramind.simulation.counselors import Counselor
from theramind.simulation.experiment import (
    CounselorSpec,
    ExperimentConfig,
    public_settings,
    track_settings,
    with_home,
)
from theramind.simulation.factory import (
    BackendPool,
    SharedBackend,
    build_counselor,
    build_patient,
    session_seed,
)
from theramind.simulation.orchestrator import Orchestrator, Round, SessionResult, in_thread
from theramind.simulation.profiles import SimProfile, load_profiles
from theramind.simulation.records import (
    EndReason,
    JsonlWriter,
    RunEvent,
    SessionLog,
    TrackKey,
    TurnLog,
    decision_log,
    usage_by_role,
)
from theramind.simulation.resume import RunState, load_state, reset_dir, write_header
from theramind.simulation.run_summary import Progress, RunSummary
from theramind.simulation.validity import assess_run, write_status

log = logging.getLogger(__name__)
Backends = Mapping[str, BaseBackend] | Callable[[TrackKey], Mapping[str, BaseBackend]] | None
Track = tuple[TrackKey, CounselorSpec, SimProfile]


class ExperimentRunner:
    """Runs an experiment: every counselor treats every selected patient for N sessions.

    `workers` > 1 splits the tracks over that many processes: the framework's per-turn work is
    Python and holds the interpreter lock, so one process tops out at about one core.
    `engine="ray"` runs each patient's course as a Ray task on the cluster at `address`
    (`simulation/ray_engine.py`); this process stays the one writer of the records.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        *,
        output_dir: Path | str | None = None,
        concurrency: int | None = None,
        backends: Backends = None,
        on_progress: Callable[[Progress], None] | None = None,
        fresh: bool = False,
        workers: int = 1,
        engine: Literal["local", "ray"] = "local",
        address: str | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.address = address
        self.out = Path(output_dir) if output_dir else config.run_dir
        self.concurrency = concurrency or config.concurrency
        self.backends = backends
        self.on_progress = on_progress
        self.fresh = fresh
        self.workers = max(1, workers)
        self._owns_sigint = False
        """Whether `run` drives the event loop from the main thread, so SIGINT is this run's."""
        self.settings = track_settings(config, None)
        profiles = load_profiles(config.profiles_dir, self.settings.taxonomy().therapy_ids)
        self.profiles: list[SimProfile] = config.choose(profiles)
        self.turns = JsonlWriter(self.out / "turns.jsonl")
        self.sessions = JsonlWriter(self.out / "sessions.jsonl")
        self.events = JsonlWriter(self.out / "events.jsonl")
        self.state = RunState()
        self._checked = False
        self.summary = RunSummary(
            experiment=config.name,
            output_dir=str(self.out),
            fingerprint=config.fingerprint(),
            tracks=len(self.tracks()),
            sessions_total=len(self.tracks()) * config.sessions,
            engine=engine,
        )

    def tracks(self) -> list[Track]:
        """Every (counselor, seed, patient) of the experiment, in a stable order."""
        return [
            (TrackKey(counselor=c.name, seed=s, patient_id=p.id), c, p)
            for c in self.config.counselors
            for s in self.config.seeds
            for p in self.profiles
        ]

    def pending(self) -> list[Track]:
        """The tracks with sessions still to run."""
        n = self.config.sessions
        return [t for t in self.tracks() if len(self.state.completed(t[0])) < n]

    def home(self, key: TrackKey) -> Path:
        """The storage home of one track."""
        return self.out / "homes" / key.slug

    # -- run ------------------------------------------------------------------------------------

    def run(self) -> RunSummary:
        """Run (or resume) the experiment to the end."""
        if self.engine == "ray":
            from theramind.simulation.ray_engine import run_on_ray

            return run_on_ray(self)
        if self.workers > 1:
            from theramind.simulation.workers import run_in_workers

            return run_in_workers(self)
        self._owns_sigint = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGINT) if self._owns_sigint else None
        try:
            return asyncio.run(self.arun())
        finally:
            if self._owns_sigint:
                signal.signal(signal.SIGINT, previous or signal.default_int_handler)
                self._owns_sigint = False

    async def arun(self) -> RunSummary:
        """Async `run` (in this process)."""
        started = time.perf_counter()
        await asyncio.to_thread(self.begin)
        try:
            await self.run_tracks(self.pending())
        except asyncio.CancelledError:
            self.finish(started, interrupted=True)
            raise
        self.finish(started)
        return self.summary

    def roles(self) -> tuple[str, ...]:
        """The model roles this run calls: the counselor, and the patient when a model plays it."""
        return ("counselor", "patient") if self.config.patient.kind == "llm" else ("counselor",)

    def check_models(self) -> None:
        """Fail before anything is written when a model server this run needs is unreachable.

        Roles served by injected backends are the caller's business and are not checked; a
        runner checks once (`begin` calls this too).

        Raises:
            ModelUnavailableError: a role's server is down (the message says what to run).
        """
        if callable(self.backends) or self._checked:
            return
        roles = tuple(r for r in self.roles() if r not in (self.backends or {}))
        router = ModelRouter(self.settings)
        try:
            for role in roles:
                log.info("checking the %s model (%s)", role, router.model_id(role))
            router.check(roles)
        finally:
            router.close()
        self._checked = True

    def begin(self) -> None:
        """Check the models and the run directory, load what is done, warm caches, announce."""
        self.check_models()
        interrupt_backends(stop=False)
        if self.fresh:
            reset_dir(self.out)
        write_header(
            self.out,
            self.config.fingerprint(),
            {
                "experiment": self.config.model_dump(mode="json"),
                "settings": public_settings(self.settings),
                "patients": [p.id for p in self.profiles],
            },
        )
        self.state = load_state(self.out)
        self.summary.sessions_resumed = self.state.sessions_done
        self.warm()
        self.events.append(
            RunEvent(
                kind="resume" if self.summary.sessions_resumed else "start",
                experiment=self.config.name,
                detail={
                    "sessions_done": self.summary.sessions_resumed,
                    "concurrency": self.concurrency,
                    "workers": self.workers,
                },
            )
        )
        self.emit(
            Progress(
                "plan",
                tracks=self.summary.tracks,
                sessions=self.summary.sessions_total,
                done_sessions=self.summary.sessions_resumed,
            )
        )
        for key, _, _ in self.tracks():
            if len(self.state.completed(key)) >= self.config.sessions:
                self.emit(Progress("track_done", key))

    def finish(self, started: float, *, interrupted: bool = False) -> None:
        """Record the end (or interruption) of the run; judge it and store the verdict."""
        self.summary.wall_s = round(time.perf_counter() - started, 3)
        self.summary.interrupted = interrupted
        validity = assess_run(self.out)
        write_status(self.out, validity)
        self.summary.sessions_done = validity.sessions_done
        self.summary.valid = validity.valid
        self.summary.problems = validity.problems
        if not validity.valid:
            log.warning("run %s is INVALID: %s", self.out, "; ".join(validity.problems))
        self.events.append(
            RunEvent(
                kind="interrupt" if interrupted else "finish",
                experiment=self.config.name,
                detail=self.summary.model_dump(mode="json", exclude={"failures"}),
            )
        )

    async def run_tracks(self, tracks: Sequence[Track]) -> None:
        """Run tracks concurrently (at most `concurrency` at once) on this event loop."""
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=self.concurrency + 4, thread_name_prefix="sim")
        loop.set_default_executor(executor)
        gate = asyncio.Semaphore(self.concurrency)
        pool = BackendPool(self.settings)
        tasks = [asyncio.ensure_future(self._track(k, c, p, gate, pool)) for k, c, p in tracks]
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            # The first Ctrl-C cancels the run. A further one must not raise KeyboardInterrupt
            # inside a track that is still letting its calls finish: it is ignored, as the
            # drain is bounded anyway. gather gives up at the first cancelled track, so wait
            # for every other one here, before the run is finished and its records judged.
            if self._owns_sigint:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            for task in tasks:
                task.cancel()
            await _wait_all(tasks)
            raise
        finally:
            self.summary.add_endpoints(pool.endpoint_usage())
            await asyncio.to_thread(pool.close)

    def warm(self) -> None:
        """Fill process-wide caches once, before tracks start together and race to fill them."""
        from theramind.safety import crisis_resources, load_patterns

        config_dir = self.settings.config_dir_path
        for language in self.settings.safety.languages:
            load_patterns(language, config_dir)
        crisis_resources(self.settings.safety.locale, config_dir)
        if self.settings.safety.semantic:
            from theramind.safety.semantic import semantic_verdict

            semantic_verdict("warm up", config_dir)  # loads once; records if it cannot

    def emit(self, progress: Progress) -> None:
        """Pass a progress notice to the display, if any."""
        if self.on_progress is not None:
            try:
                self.on_progress(progress)
            except Exception:  # a display must not break the run
                log.debug("progress callback failed", exc_info=True)

    def _backends(self, key: TrackKey, pool: BackendPool) -> dict[str, BaseBackend]:
        if callable(self.backends):
            return pool.for_roles(self.backends(key))  # the track owns these
        shared = {role: SharedBackend(b) for role, b in (self.backends or {}).items()}
        return pool.for_roles(shared)

    async def _track(
        self,
        key: TrackKey,
        spec: CounselorSpec,
        profile: SimProfile,
        gate: asyncio.Semaphore,
        pool: BackendPool,
    ) -> None:
        done = self.state.completed(key)
        async with gate:
            counselor: Counselor | None = None
            try:
                settings = with_home(self.settings, self.home(key))
                backends = self._backends(key, pool)
                counselor = await in_thread(
                    functools.partial(build_counselor, spec, settings, backends=backends)
                )
                patient, patient_model = build_patient(
                    self.config.patient, settings, backends=backends
                )
                patient.restore(profile, done[-1].latent_after if done else None)
                await in_thread(
                    counselor.rewind, key.patient_id, profile.intake(), self.state.history(key)
                )
                models = {**counselor.model_ids(), "patient": patient_model}
                orchestrator = Orchestrator(counselor, patient, round_cap=self.config.round_cap)
                try:
                    for no in range(len(done) + 1, self.config.sessions + 1):
                        rng = random.Random(session_seed(key.seed, key.patient_id, no))
                        result = await orchestrator.arun_session(
                            profile, no, rng, on_round=functools.partial(self._log_round, key, no)
                        )
                        if result.error is not None:
                            self._fail(key, no, result.error, result.end_reason)
                            return
                        self._log_session(key, profile, result, models)
                finally:
                    patient.close()
            except Exception as exc:
                self._fail(key, None, exc)
                return
            finally:
                if counselor is not None:
                    await asyncio.to_thread(counselor.close)
        self.emit(Progress("track_done", key))

    # -- records --------------------------------------------------------------------------------

    def _fail(
        self,
        key: TrackKey,
        session_no: int | None,
        exc: BaseException,
        end_reason: EndReason | None = None,
    ) -> None:
        log.error("track %s failed in session %s: %r", key.slug, session_no, exc)
        self.record_failure(key, session_no, f"{type(exc).__name__}: {exc}", end_reason)

    def record_failure(
        self,
        key: TrackKey,
        session_no: int | None,
        error: str,
        end_reason: EndReason | None = None,
    ) -> None:
        """Record a track's failure: an event, the summary's count, a progress notice."""
        event = RunEvent(
            kind="failure",
            experiment=self.config.name,
            counselor=key.counselor,
            seed=key.seed,
            patient_id=key.patient_id,
            session_no=session_no,
            end_reason=end_reason,
            error=error[:1000],
        )
        self.events.append(event)
        self.summary.tracks_failed += 1
        self.summary.failures.append(event)
        self.emit(Progress("track_failed", key, session_no or 0))

    def _log_round(self, key: TrackKey, session_no: int, r: Round) -> None:
        self.record_turn(self.turn_log(key, session_no, r))

    def turn_log(self, key: TrackKey, session_no: int, r: Round) -> TurnLog:
        """Build the record of one round."""
        calls = [*r.response.calls, *([r.patient.usage] if r.patient.usage else [])]
        return TurnLog(
            experiment=self.config.name,
            counselor=key.counselor,
            seed=key.seed,
            patient_id=key.patient_id,
            session_no=session_no,
            round=r.patient.round,
            prompt=r.prompt,
            patient=r.patient,
            response=r.response,
            latent=r.latent,
            usage=usage_by_role(calls),
        )

    def record_turn(self, turn: TurnLog, *, notify: bool = True) -> None:
        """Write one round's record and count it."""
        self.turns.append(turn)
        usage = turn.usage
        tokens = sum(u.prompt_tokens + u.completion_tokens for u in usage.values())
        self.summary.turns_run += 1
        for role, u in usage.items():
            spent = u.prompt_tokens + u.completion_tokens
            self.summary.tokens[role] = self.summary.tokens.get(role, 0) + spent
        if notify:
            key = TrackKey(counselor=turn.counselor, seed=turn.seed, patient_id=turn.patient_id)
            self.emit(Progress("round", key, turn.session_no, tokens=tokens))

    def _log_session(
        self, key: TrackKey, profile: SimProfile, result: SessionResult, models: dict[str, str]
    ) -> None:
        self.record_session(self.session_log(key, profile, result, models))

    def session_log(
        self, key: TrackKey, profile: SimProfile, result: SessionResult, models: dict[str, str]
    ) -> SessionLog:
        """Build the record of one finished session."""
        if result.latent_before is None or result.latent_after is None:
            raise SimulationError("a finished session lacks its latent state")
        if result.questionnaire is None:
            raise SimulationError("a finished session lacks its questionnaire")
        calls = [*result.opening_calls, *(c for r in result.rounds for c in r.response.calls)]
        calls += [r.patient.usage for r in result.rounds if r.patient.usage]
        calls += [CallUsage.model_validate(c) for c in (result.close or {}).get("calls", [])]
        return SessionLog(
            experiment=self.config.name,
            counselor=key.counselor,
            seed=key.seed,
            patient_id=key.patient_id,
            session_no=result.session_no,
            category=profile.category,
            style=profile.style,
            opening=result.opening,
            rounds=len(result.rounds),
            end_reason=result.end_reason,
            therapies=result.therapies,
            strategies=[r.response.strategy for r in result.rounds],
            attitudes=[r.patient.attitude for r in result.rounds],
            understood=round(result.understood, 4),
            latent_before=result.latent_before,
            latent_after=result.latent_after,
            questionnaire=result.questionnaire,
            counselor_close=result.close,
            decision=decision_log(result.close, result.therapies),
            usage=usage_by_role(calls),
            model_ids=models,
            started_at=result.started_at,
            wall_s=result.wall_s,
        )

    def record_session(self, session: SessionLog) -> None:
        """Write one finished session's record and count it."""
        self.sessions.append(session)
        self.summary.sessions_run += 1
        key = TrackKey(
            counselor=session.counselor, seed=session.seed, patient_id=session.patient_id
        )
        self.emit(Progress("session", key, session.session_no))


def run_experiment(config: ExperimentConfig, **kwargs: Any) -> RunSummary:
    """Run (or resume) an experiment; keyword arguments go to `ExperimentRunner`."""
    return ExperimentRunner(config, **kwargs).run()


async def _wait_all(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Wait until every task is done, through any further cancels of the waiting task."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        try:
            _, pending = await asyncio.wait(pending)
        except asyncio.CancelledError:
            pending = {t for t in pending if not t.done()}
