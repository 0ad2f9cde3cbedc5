"""Aggregation of scores into per-counselor figures.

Kept apart from scoring: per-counselor means with confidence intervals, by
problem category and overall, paired differences on the same patients and seeds, judge variance.

The unit of analysis is the track (one patient under one seed): repeated judge samples are
averaged per target first, then a track's sessions are averaged, so sessions of one patient
never count as independent observations. Missing scores (value None) are left out of every
mean and counted separately. Intervals stay on each metric's scale (see `stats.mean_ci`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from statistics import fmean

from pydantic import BaseModel, Field

from theramind.evaluation.scores import ScoreRecord
from theramind.evaluation.stats import (
    UNBOUNDED,
    Bounds,
    CIMethod,
    Interval,
    difference_bounds,
    mean_ci,
    sample_sd,
)

Unit = tuple[int, str]
"""A track within a counselor: (seed, patient_id)."""


class MetricSummary(BaseModel):
    """One metric for one counselor (and optionally one problem category)."""

    metric: str
    name: str = ""
    source: str
    scope: str
    counselor: str
    category: str | None = Field(default=None, description="None: all categories.")
    n: int = Field(description="Tracks (patient x seed) with a value.")
    scored: int = Field(description="Score records with a value.")
    missing: int = Field(description="Score records that are MISSING (judge failures).")
    mean: float | None = None
    sd: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    method: CIMethod = "t"
    confidence: float = 0.95
    clipped: bool = Field(default=False, description="The interval was cut back to the scale.")
    judge_sd: float | None = Field(
        default=None, description="Mean within-target SD across repeated judge samples."
    )
    scale_min: float | None = None
    scale_max: float | None = None
    higher_is_better: bool | None = True


class PairedDifference(BaseModel):
    """Counselor a minus counselor b on the same (seed, patient) tracks."""

    metric: str
    name: str = ""
    a: str
    b: str
    n: int
    mean_diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    method: CIMethod = "t"
    clipped: bool = Field(default=False, description="The interval was cut back to the range.")
    higher_is_better: bool | None = True

    @property
    def verdict(self) -> str:
        """Which side is better when the interval excludes zero, else 'no clear difference'."""
        if self.ci_low is None or self.ci_high is None or self.higher_is_better is None:
            return "n/a"
        if self.ci_low <= 0 <= self.ci_high:
            return "no clear difference"
        a_higher = self.ci_low > 0
        return f"{self.a} better" if a_higher == self.higher_is_better else f"{self.b} better"


JUDGE_ORDER = (
    "therapeutic_alliance",
    "interaction",
    "coherence",
    "flexibility",
    "empathy",
    "therapeutic_attunement",
    "empathy_insight",
    "support_autonomy",
    "attunement_presence",
    "safety_boundaries",
)
"""The paper's metrics, then PsyLLM's; other judge metrics follow by id."""


def metric_order(records: Iterable[ScoreRecord]) -> list[str]:
    """Metric ids: judge metrics in a fixed order, then outcomes in order of first appearance."""
    seen: dict[str, str] = {}
    for r in records:
        seen.setdefault(r.metric, r.source)
    judged = sorted(
        (m for m, s in seen.items() if s == "judge"),
        key=lambda m: (JUDGE_ORDER.index(m) if m in JUDGE_ORDER else len(JUDGE_ORDER), m),
    )
    return judged + [m for m, s in seen.items() if s != "judge"]


def counselor_order(records: Iterable[ScoreRecord]) -> list[str]:
    """Counselor names in order of first appearance."""
    return list(dict.fromkeys(r.counselor for r in records))


def target_values(records: Iterable[ScoreRecord]) -> dict[tuple[str, str, Unit, int | None], list]:
    """Group sample values per (metric, counselor, track, session): None marks a missing one."""
    out: dict[tuple[str, str, Unit, int | None], list] = defaultdict(list)
    for r in records:
        out[(r.metric, r.counselor, (r.seed, r.patient_id), r.session_no)].append(r.value)
    return out


def track_values(records: Iterable[ScoreRecord]) -> dict[tuple[str, str, Unit], float | None]:
    """Collapse samples per target, then sessions per track; None when nothing was scored."""
    per_track: dict[tuple[str, str, Unit], list[float]] = defaultdict(list)
    keys: set[tuple[str, str, Unit]] = set()
    for (metric, counselor, unit, _), values in target_values(records).items():
        keys.add((metric, counselor, unit))
        present = [v for v in values if v is not None]
        if present:
            per_track[(metric, counselor, unit)].append(fmean(present))
    return {k: (fmean(per_track[k]) if per_track.get(k) else None) for k in keys}


def scale_label(lo: float | None, hi: float | None) -> str:
    """Render a metric's scale: '0–3', '≥0', '≤1' or '' when it is open."""
    if lo is not None and hi is not None:
        return f"{lo:g}–{hi:g}"
    if lo is not None:
        return f"≥{lo:g}"
    return f"≤{hi:g}" if hi is not None else ""


def bounds_of(records: Iterable[ScoreRecord]) -> Bounds:
    """Return a metric's scale from its first record ((None, None) when there is none)."""
    for r in records:
        return (r.scale_min, r.scale_max)
    return UNBOUNDED


def _judge_sd(records: Sequence[ScoreRecord]) -> float | None:
    sds = []
    for values in target_values(records).values():
        present = [v for v in values if v is not None]
        sd = sample_sd(present)
        if sd is not None:
            sds.append(sd)
    return fmean(sds) if sds else None


def summarize(
    records: Sequence[ScoreRecord],
    *,
    method: CIMethod = "t",
    confidence: float = 0.95,
    by_category: bool = False,
    seed: int = 0,
) -> list[MetricSummary]:
    """Summarise every metric per counselor (overall, then per category if asked)."""
    groups: dict[tuple[str, str, str | None], list[ScoreRecord]] = defaultdict(list)
    for r in records:
        groups[(r.metric, r.counselor, None)].append(r)
        if by_category:
            groups[(r.metric, r.counselor, r.category)].append(r)
    metrics, counselors = metric_order(records), counselor_order(records)
    categories = sorted({r.category for r in records}) if by_category else []
    out = []
    for category in [None, *categories]:
        for metric in metrics:
            for counselor in counselors:
                rows = groups.get((metric, counselor, category))
                if rows:
                    out.append(_summary(rows, category, method, confidence, seed))
    return out


def _summary(
    rows: Sequence[ScoreRecord],
    category: str | None,
    method: CIMethod,
    confidence: float,
    seed: int,
) -> MetricSummary:
    first = rows[0]
    values = [v for v in track_values(rows).values() if v is not None]
    ci: Interval = mean_ci(
        values, method=method, confidence=confidence, seed=seed, bounds=bounds_of(rows)
    )
    return MetricSummary(
        metric=first.metric,
        name=first.name or first.metric,
        source=first.source,
        scope=first.scope,
        counselor=first.counselor,
        category=category,
        n=ci.n,
        scored=sum(1 for r in rows if r.value is not None),
        missing=sum(1 for r in rows if r.value is None),
        mean=ci.mean,
        sd=ci.sd,
        ci_low=ci.low,
        ci_high=ci.high,
        method=method,
        confidence=confidence,
        clipped=ci.clipped,
        judge_sd=_judge_sd(rows) if first.source == "judge" else None,
        scale_min=first.scale_min,
        scale_max=first.scale_max,
        higher_is_better=first.higher_is_better,
    )


def paired_differences(
    records: Sequence[ScoreRecord],
    a: str,
    b: str,
    *,
    method: CIMethod = "t",
    confidence: float = 0.95,
    seed: int = 0,
) -> list[PairedDifference]:
    """Mean difference a - b per metric over the tracks (seed, patient) both have a value for."""
    values = track_values(records)
    names = {r.metric: (r.name or r.metric, r.higher_is_better) for r in records}
    scales = {r.metric: (r.scale_min, r.scale_max) for r in records}
    out = []
    for metric in metric_order(records):
        units = {u for (m, c, u) in values if m == metric and c == a}
        diffs = []
        for unit in sorted(units):
            va, vb = values.get((metric, a, unit)), values.get((metric, b, unit))
            if va is not None and vb is not None:
                diffs.append(va - vb)
        if not diffs and not any(m == metric and c == b for (m, c, _) in values):
            continue
        ci = mean_ci(
            diffs,
            method=method,
            confidence=confidence,
            seed=seed,
            bounds=difference_bounds(scales[metric]),
        )
        out.append(
            PairedDifference(
                metric=metric,
                name=names[metric][0],
                a=a,
                b=b,
                n=ci.n,
                mean_diff=ci.mean,
                ci_low=ci.low,
                ci_high=ci.high,
                method=method,
                clipped=ci.clipped,
                higher_is_better=names[metric][1],
            )
        )
    return out
