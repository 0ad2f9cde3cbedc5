"""Evaluating a run: objective outcomes, then the judge on every session and course.

Scores are appended to `RUN/eval/scores.jsonl` as soon as each exists; a rerun keeps what is
there (same rubric, judge model and course length) and scores only the rest, so an
interrupted evaluation resumes and a changed rubric or judge is scored again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field

from theramind.config import Settings
from theramind.evaluation.aggregate import summarize
from theramind.evaluation.judge import ROLE, RubricScorer, verdict_tokens
from theramind.evaluation.outcomes import SafetyContext, outcome_scorers
from theramind.evaluation.rubrics import load_rubrics, select_rubrics
from theramind.evaluation.runs import RunData, load_run, run_settings
from theramind.evaluation.scores import ScoreKey, ScoreRecord, ScoreStore, Target
from theramind.llm import BaseBackend, ModelRouter
from theramind.strict import Strict

log = logging.getLogger(__name__)
PROMPT_OVERHEAD_TOKENS = 900
CHARS_PER_TOKEN = 3.5


class EvalOptions(Strict):
    """How to evaluate a run."""

    rubrics: list[str] = Field(
        default_factory=list, description="Rubric ids to judge (empty: the default rubrics)."
    )
    rubrics_dir: str | None = Field(default=None, description="Directory of rubric YAML files.")
    judge: bool = Field(default=True, description="Run the judge (False: outcomes only).")
    samples: int = Field(default=1, ge=1, le=20, description="Judge samples per target.")
    concurrency: int = Field(default=2, ge=1, le=64, description="Judge calls at once.")
    retry_missing: bool = Field(default=False, description="Judge missing scores again.")
    max_transcript_chars: int = Field(default=12000, ge=500)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)


@dataclass(frozen=True)
class EvalProgress:
    """A progress notice: `total` jobs planned, or one job `done`."""

    kind: str
    total: int = 0
    metric: str = ""
    missing: bool = False


@dataclass
class EvalResult:
    """What an evaluation did, and every current score of the run."""

    run_dir: Path
    scores_path: Path
    records: list[ScoreRecord]
    outcomes_written: int = 0
    judged: int = 0
    judge_missing: int = 0
    kept: int = 0
    judge_model: str | None = None
    wall_s: float = 0.0
    rubrics: list[str] = field(default_factory=list)


def eval_dir(run_dir: Path | str) -> Path:
    """Return where a run's evaluation lives."""
    return Path(run_dir) / "eval"


def transcript_budget(settings: Settings, options: EvalOptions, max_tokens: int) -> int:
    """Cap the transcript so the prompt fits the judge model's context window (llama.cpp)."""
    spec = settings.models[ROLE]
    if spec.backend != "llamacpp":
        return options.max_transcript_chars
    room = spec.n_ctx - max_tokens - PROMPT_OVERHEAD_TOKENS
    return max(800, min(options.max_transcript_chars, int(room * CHARS_PER_TOKEN)))


def targets(data: RunData, scope: str) -> list[Target]:
    """Every session (or course) of a run, as targets."""
    if scope == "course":
        return [Target(c) for c in data.courses]
    return [Target(c, s.session_no) for c in data.courses for s in c.sessions]


def outcome_records(data: RunData) -> list[ScoreRecord]:
    """Compute every objective outcome of a run in memory."""
    out = []
    for scorer in outcome_scorers(SafetyContext.of(data)):
        for target in targets(data, scorer.info.scope):
            score = scorer.compute(target)
            if score is not None:
                out.append(
                    ScoreRecord.build(
                        scorer.info, target, score, version=scorer.version, model=None
                    )
                )
    return out


def write_outcomes(
    data: RunData, store: ScoreStore, existing: Mapping[ScoreKey, ScoreRecord]
) -> list[ScoreRecord]:
    """Compute every objective outcome; append those that are new or changed."""
    written = []
    for record in outcome_records(data):
        old = existing.get(record.key)
        if old is None or not old.same_result(record):
            store.append(record)
            written.append(record)
    return written


def _judge_version(scorer: RubricScorer, target: Target, model: str) -> str:
    """What a stored judgment must match: rubric content, judge model, and course length."""
    version = f"{scorer.version}@{model}"
    if scorer.info.scope == "course":
        version += f":{len(target.course.sessions)}"
    return version


def evaluate_run(
    run_dir: Path | str,
    *,
    options: EvalOptions | None = None,
    settings: Settings | None = None,
    backends: Mapping[str, BaseBackend] | None = None,
    on_progress: Callable[[EvalProgress], None] | None = None,
) -> EvalResult:
    """Score a run: outcomes first (exact, instant), then the judge; resumes earlier work.

    Raises:
        ConfigError: no session records, or an unknown rubric id.
    """
    started = time.perf_counter()
    options = options or EvalOptions()
    data = load_run(run_dir)
    store = ScoreStore(eval_dir(data.root) / "scores.jsonl")
    existing = store.load()
    result = EvalResult(data.root, store.path, [])
    result.outcomes_written = len(write_outcomes(data, store, existing))
    if options.judge:
        settings = settings or run_settings(data)
        router = ModelRouter(settings, backends=backends)
        try:
            _judge(data, options, settings, router, store, existing, result, on_progress)
        finally:
            router.close()
    result.records = store.records()
    write_summary(eval_dir(data.root) / "summary.json", result.records)
    result.wall_s = round(time.perf_counter() - started, 3)
    return result


def write_summary(path: Path, records: list[ScoreRecord]) -> None:
    """Write the per-counselor summaries (overall and by category) as JSON."""
    rows = [s.model_dump(mode="json") for s in summarize(records, by_category=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def _judge(
    data: RunData,
    options: EvalOptions,
    settings: Settings,
    router: ModelRouter,
    store: ScoreStore,
    existing: Mapping[ScoreKey, ScoreRecord],
    result: EvalResult,
    on_progress: Callable[[EvalProgress], None] | None,
) -> None:
    rubrics = select_rubrics(load_rubrics(options.rubrics_dir), options.rubrics)
    result.rubrics = [r.id for r in rubrics]
    model = router.model_id(ROLE)
    result.judge_model = model
    jobs: list[tuple[RubricScorer, Target, str]] = []
    for rubric in rubrics:
        budget = transcript_budget(settings, options, verdict_tokens(rubric))
        scorer = RubricScorer(
            rubric,
            router,
            samples=options.samples,
            names=data.counselors,
            max_chars=budget,
            temperature=options.temperature,
        )
        for base in targets(data, rubric.scope):
            version = _judge_version(scorer, base, model)
            for k in range(options.samples):
                target = Target(base.course, base.session_no, k)
                key = (rubric.id, *_unit(target))
                old = existing.get(key)
                if _reusable(old, version, options.retry_missing):
                    result.kept += 1
                    continue
                jobs.append((scorer, target, version))
    _emit(on_progress, EvalProgress("plan", total=len(jobs)))

    def run(job: tuple[RubricScorer, Target, str]) -> ScoreRecord:
        scorer, target, version = job
        score = scorer.score(target)
        record = ScoreRecord.build(scorer.info, target, score, version=version, model=model)
        store.append(record)
        return record

    pool = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="judge")
    try:
        futures = [pool.submit(run, job) for job in jobs]
        for future in as_completed(futures):
            record = future.result()
            result.judged += 1
            result.judge_missing += record.value is None
            note = EvalProgress("done", metric=record.metric, missing=record.value is None)
            _emit(on_progress, note)
    except BaseException:
        # Interrupted (Ctrl-C) or a bug: drop the queued jobs; what was judged is on disk.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _reusable(old: ScoreRecord | None, version: str, retry_missing: bool) -> bool:
    """Whether a stored judgment stands: same version, and not a missing one being retried."""
    if old is None or old.version != version:
        return False
    return old.value is not None or not retry_missing


def _unit(target: Target) -> tuple[str, int, str, int | None, int]:
    key = target.course.key
    return key.counselor, key.seed, key.patient_id, target.session_no, target.sample


def _emit(callback: Callable[[EvalProgress], None] | None, note: EvalProgress) -> None:
    if callback is not None:
        try:
            callback(note)
        except Exception:  # a display must not break the evaluation
            log.debug("progress callback failed", exc_info=True)
