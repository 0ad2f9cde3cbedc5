"""Aggregation and confidence intervals, checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from theramind.evaluation.aggregate import paired_differences, summarize, track_values
from theramind.evaluation.scores import ScoreRecord
from theramind.evaluation.stats import mean_ci, t_cdf, t_quantile

# Two-sided 95% critical values of Student's t, from printed tables.
T_TABLE = {1: 12.7062, 2: 4.3027, 4: 2.7764, 9: 2.2622, 30: 2.0423}


@pytest.mark.parametrize(("df", "expected"), sorted(T_TABLE.items()))
def test_t_quantile_matches_the_table(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)
    assert t_quantile(0.025, df) == pytest.approx(-expected, abs=1e-4)


def test_t_cdf_is_symmetric_and_matches_the_cauchy_case() -> None:
    # df = 1 is the Cauchy distribution: P(T <= 1) = 0.75 exactly.
    assert t_cdf(1.0, 1) == pytest.approx(0.75, abs=1e-9)
    assert t_cdf(-1.0, 1) == pytest.approx(0.25, abs=1e-9)
    assert t_cdf(0.0, 5) == 0.5


def test_t_interval_by_hand() -> None:
    ci = mean_ci([1, 2, 3, 4, 5])
    # mean 3, s = sqrt(2.5), half-width = 2.7764 * s / sqrt(5) = 1.9632
    assert ci.n == 5 and ci.mean == 3.0
    assert ci.sd == pytest.approx(math.sqrt(2.5))
    assert ci.low == pytest.approx(3 - 1.96324, abs=1e-4)
    assert ci.high == pytest.approx(3 + 1.96324, abs=1e-4)


def test_interval_edge_cases() -> None:
    assert mean_ci([]).mean is None
    one = mean_ci([2.5])
    assert one.mean == 2.5 and one.low is None and one.high is None
    flat = mean_ci([1.0, 1.0, 1.0])
    assert flat.low == flat.high == 1.0


def test_bootstrap_is_reproducible_and_brackets_the_mean() -> None:
    values = [0.0, 1.0, 1.0, 2.0, 3.0, 5.0, 8.0]
    a = mean_ci(values, method="bootstrap", seed=3)
    b = mean_ci(values, method="bootstrap", seed=3)
    assert a == b
    assert a.low is not None and a.high is not None
    assert a.low < a.mean < a.high  # type: ignore[operator]
    assert min(values) <= a.low and a.high <= max(values)


def rec(
    metric: str,
    counselor: str,
    patient: str,
    value: float | None,
    *,
    session: int | None = None,
    sample: int = 0,
    category: str = "stress",
    source: str = "judge",
    scale: tuple[float | None, float | None] = (0, 3),
) -> ScoreRecord:
    return ScoreRecord(
        experiment="x",
        metric=metric,
        name=metric.upper(),
        source=source,  # type: ignore[arg-type]
        scope="session" if session else "course",
        counselor=counselor,
        seed=0,
        patient_id=patient,
        category=category,
        session_no=session,
        sample=sample,
        value=value,
        scale_min=scale[0],
        scale_max=scale[1],
    )


def judged_records() -> list[ScoreRecord]:
    """Counselor A on three patients, two sessions, two judge samples each; some missing."""
    return [
        rec("m", "A", "p1", 2, session=1, sample=0),
        rec("m", "A", "p1", None, session=1, sample=1),  # missing: session 1 = 2
        rec("m", "A", "p1", 1, session=2, sample=0),
        rec("m", "A", "p1", 3, session=2, sample=1),  # session 2 = 2 -> p1 = 2
        rec("m", "A", "p2", None, session=1, sample=0, category="anxiety"),
        rec("m", "A", "p2", None, session=1, sample=1, category="anxiety"),  # session 1 missing
        rec("m", "A", "p2", 3, session=2, sample=0, category="anxiety"),
        rec("m", "A", "p2", 3, session=2, sample=1, category="anxiety"),  # p2 = 3
        rec("m", "A", "p3", 0, session=1, sample=0),
        rec("m", "A", "p3", 0, session=1, sample=1),
        rec("m", "A", "p3", 1, session=2, sample=0),
        rec("m", "A", "p3", 1, session=2, sample=1),  # p3 = 0.5
    ]


def test_tracks_average_samples_then_sessions_and_skip_missing() -> None:
    values = track_values(judged_records())
    assert values[("m", "A", (0, "p1"))] == 2.0
    assert values[("m", "A", (0, "p2"))] == 3.0
    assert values[("m", "A", (0, "p3"))] == 0.5


def test_summary_by_hand_counts_missing_and_judge_variance() -> None:
    open_scale = [
        r.model_copy(update={"scale_min": None, "scale_max": None}) for r in judged_records()
    ]
    (overall,) = [s for s in summarize(open_scale) if s.category is None]
    # tracks 2, 3, 0.5: mean 11/6; s^2 = (1/36 + 49/36 + 64/36) / 2 = 19/12
    sd = math.sqrt(19 / 12)
    half = 4.302653 * sd / math.sqrt(3)
    assert overall.n == 3 and overall.scored == 9 and overall.missing == 3
    assert overall.mean == pytest.approx(11 / 6)
    assert overall.sd == pytest.approx(sd)
    assert overall.ci_low == pytest.approx(11 / 6 - half, abs=1e-5)
    assert overall.ci_high == pytest.approx(11 / 6 + half, abs=1e-5)
    assert not overall.clipped
    # Within-target SD: p1 session 2 has samples 1 and 3 (SD sqrt 2), three targets agree (0).
    assert overall.judge_sd == pytest.approx(math.sqrt(2) / 4)


def test_t_intervals_stay_on_the_scale_and_say_when_they_were_cut() -> None:
    # The same tracks on a 0-3 rubric: 11/6 ± 3.13 would read [-1.29, 4.96].
    (overall,) = [s for s in summarize(judged_records()) if s.category is None]
    assert overall.mean == pytest.approx(11 / 6)
    assert (overall.ci_low, overall.ci_high, overall.clipped) == (0.0, 3.0, True)
    free, one_side = mean_ci([0.0, 0.5, 2.5]), mean_ci([0.0, 0.5, 2.5], bounds=(0.0, None))
    assert free.low is not None and free.low < 0 and not free.clipped
    assert (one_side.low, one_side.high, one_side.clipped) == (0.0, free.high, True)
    narrow = mean_ci([1.0, 1.1, 0.9], bounds=(0.0, 3.0))
    assert not narrow.clipped and 0.0 < narrow.low < 1.0 < narrow.high < 3.0  # type: ignore[operator]


def test_bootstrap_intervals_lie_within_the_observed_values() -> None:
    values = [0.0, 0.0, 0.5, 3.0]
    ci = mean_ci(values, method="bootstrap", bounds=(0.0, 3.0))
    assert ci.low is not None and ci.high is not None
    assert 0.0 <= ci.low < ci.mean < ci.high <= 3.0  # type: ignore[operator]
    assert not ci.clipped


def test_summary_by_category() -> None:
    rows = summarize(judged_records(), by_category=True)
    by = {s.category: s for s in rows}
    assert by["anxiety"].n == 1 and by["anxiety"].mean == 3.0 and by["anxiety"].missing == 2
    assert by["stress"].n == 2 and by["stress"].mean == pytest.approx(1.25)
    assert by[None].n == 3


def test_a_metric_with_only_missing_scores_has_no_mean() -> None:
    rows = summarize([rec("m", "A", "p1", None, session=1), rec("m", "A", "p2", None, session=1)])
    assert rows[0].mean is None and rows[0].n == 0 and rows[0].missing == 2


def test_paired_differences_by_hand() -> None:
    records = [
        rec("x", "A", "p1", 5, source="outcome", scale=(None, None)),
        rec("x", "A", "p2", 3, source="outcome", scale=(None, None)),
        rec("x", "A", "p3", 4, source="outcome", scale=(None, None)),
        rec("x", "B", "p1", 2, source="outcome", scale=(None, None)),
        rec("x", "B", "p2", 2, source="outcome", scale=(None, None)),
        rec("x", "B", "p3", None, source="outcome", scale=(None, None)),  # p3 is not paired
    ]
    (diff,) = paired_differences(records, "A", "B")
    # differences 3 and 1: mean 2, s = sqrt 2, half-width = 12.7062 * sqrt2 / sqrt2
    assert diff.n == 2 and diff.mean_diff == pytest.approx(2.0)
    assert diff.ci_low == pytest.approx(2 - 12.7062, abs=1e-3)
    assert diff.ci_high == pytest.approx(2 + 12.7062, abs=1e-3)
    assert diff.verdict == "no clear difference"
    # On a 0-5 scale a difference lies within ±5: the same interval is cut there.
    bounded = [r.model_copy(update={"scale_min": 0, "scale_max": 5}) for r in records]
    (cut,) = paired_differences(bounded, "A", "B")
    assert (cut.ci_low, cut.ci_high, cut.clipped) == (-5.0, 5.0, True)
    assert cut.mean_diff == pytest.approx(2.0)


def test_paired_verdict_respects_the_metric_direction() -> None:
    records = []
    for i, (a, b) in enumerate([(-3.0, 1.0), (-2.0, 0.5), (-2.5, 0.0)]):
        for counselor, value in (("A", a), ("B", b)):
            r = rec("phq", counselor, f"p{i}", value, source="outcome")
            records.append(r.model_copy(update={"higher_is_better": False}))
    (diff,) = paired_differences(records, "A", "B")
    assert diff.ci_high is not None and diff.ci_high < 0
    assert diff.verdict == "A better"
