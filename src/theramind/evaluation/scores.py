"""Scores: what a scorer returns, the record written for it, and the JSONL file that holds them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from theramind.evaluation.runs import Course
from theramind.records import utcnow
from theramind.simulation.records import JsonlWriter, read_jsonl
from theramind.strict import Strict

Scope = Literal["session", "course"]
Source = Literal["judge", "outcome"]
ScoreKey = tuple[str, str, int, str, int | None, int]
"""(metric, counselor, seed, patient_id, session_no, sample)."""


class Score(Strict):
    """One metric's value for one target; `value` None means MISSING (never zero)."""

    value: float | None
    explanation: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def missing(self) -> bool:
        """Whether the scorer could not produce a value (e.g. the judge failed)."""
        return self.value is None


class MetricInfo(Strict):
    """What a metric measures and how to read it."""

    id: str
    name: str
    source: Source
    scope: Scope
    scale_min: float | None = None
    scale_max: float | None = None
    higher_is_better: bool | None = Field(
        default=True, description="None when neither direction is better (a count of events)."
    )
    description: str = ""


@dataclass(frozen=True)
class Target:
    """What one score is about: a whole course, or one session of it; `sample` for repeats."""

    course: Course
    session_no: int | None = None
    sample: int = 0


class Scorer(ABC):
    """A metric: scores one target; aggregation over targets happens elsewhere."""

    info: MetricInfo

    @property
    def metric(self) -> str:
        """The metric's id."""
        return self.info.id

    @property
    def version(self) -> str:
        """What a stored score must match to be reused (changes when the metric changes)."""
        return "1"

    @abstractmethod
    def score(self, target: Target) -> Score:
        """Score one target."""


class ScoreRecord(Strict):
    """A score as written to `scores.jsonl`: who, what, the value and how it was obtained."""

    record: Literal["score"] = "score"
    experiment: str
    metric: str
    name: str = ""
    source: Source
    scope: Scope
    counselor: str
    seed: int
    patient_id: str
    category: str
    session_no: int | None = None
    sample: int = 0
    value: float | None
    explanation: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    scale_min: float | None = None
    scale_max: float | None = None
    higher_is_better: bool | None = True
    version: str = "1"
    model: str | None = None
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def key(self) -> ScoreKey:
        """Identify the target and metric (a later record with the same key wins)."""
        return (
            self.metric,
            self.counselor,
            self.seed,
            self.patient_id,
            self.session_no,
            self.sample,
        )

    @classmethod
    def build(
        cls, info: MetricInfo, target: Target, score: Score, *, version: str, model: str | None
    ) -> ScoreRecord:
        """Make the record of one score."""
        key = target.course.key
        return cls(
            experiment=target.course.experiment,
            metric=info.id,
            name=info.name,
            source=info.source,
            scope=info.scope,
            counselor=key.counselor,
            seed=key.seed,
            patient_id=key.patient_id,
            category=target.course.category,
            session_no=target.session_no,
            sample=target.sample,
            value=score.value,
            explanation=score.explanation,
            metadata=score.metadata,
            scale_min=info.scale_min,
            scale_max=info.scale_max,
            higher_is_better=info.higher_is_better,
            version=version,
            model=model,
        )

    def same_result(self, other: ScoreRecord) -> bool:
        """Whether two records say the same thing (ignoring when they were made)."""
        skip = {"created_at"}
        return self.model_dump(exclude=skip) == other.model_dump(exclude=skip)


class ScoreStore:
    """`scores.jsonl`: records appended as they are computed; the latest per key wins."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = JsonlWriter(path)

    def append(self, record: ScoreRecord) -> None:
        """Write one record at the end of the file."""
        self._writer.append(record)

    def load(self) -> dict[ScoreKey, ScoreRecord]:
        """Read the file; for each key keep the last record."""
        return {r.key: r for r in read_jsonl(self.path, ScoreRecord)}

    def records(self) -> list[ScoreRecord]:
        """Return the current records (one per key), in file order of their latest write."""
        return list(self.load().values())
