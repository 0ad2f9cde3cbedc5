"""The Markdown report of an evaluated run: tables of every metric, paired comparisons, figures."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from theramind.evaluation.aggregate import (
    MetricSummary,
    PairedDifference,
    paired_differences,
    scale_label,
    summarize,
)
from theramind.evaluation.decisions import course_decisions, step_text
from theramind.evaluation.evaluate import eval_dir, outcome_records
from theramind.evaluation.plots import radar_chart, trajectories
from theramind.evaluation.runs import RunData, load_run
from theramind.evaluation.scores import ScoreRecord, ScoreStore
from theramind.evaluation.stats import CIMethod
from theramind.evaluation.timeline import therapy_timeline
from theramind.records import utcnow
from theramind.simulation.validity import validity_section

log = logging.getLogger(__name__)
MAX_TIMELINES = 30
HEADLINE = (
    "therapeutic_alliance",
    "interaction",
    "coherence",
    "phq9_change_latent",
    "responsive_fraction",
    "alliance_self",
)


@dataclass
class Report:
    """Where the report and its figures were written."""

    path: Path
    figures: list[Path] = field(default_factory=list)
    judged: bool = False


def fmt(value: float | None, digits: int = 2) -> str:
    """Format a number for a table ('–' when absent)."""
    return "–" if value is None else f"{value:.{digits}f}"


def cell(s: MetricSummary | None) -> str:
    """Render a mean with its interval and counts."""
    if s is None:
        return ""
    if s.mean is None:
        return f"missing ({s.missing})" if s.missing else "–"
    text = fmt(s.mean)
    if s.ci_low is not None and s.ci_high is not None:
        text += f" [{fmt(s.ci_low)}, {fmt(s.ci_high)}]{'*' if s.clipped else ''}"
    text += f" n={s.n}"
    if s.missing:
        text += f", {s.missing} missing"
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    esc = [[str(c).replace("|", "\\|").replace("\n", " ") for c in row] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in esc]
    return lines


def _direction(s: MetricSummary) -> str:
    return {True: "↑", False: "↓", None: ""}[s.higher_is_better]


def metric_table(
    summaries: Sequence[MetricSummary], counselors: Sequence[str], source: str
) -> list[str]:
    """One row per metric, one column per counselor: mean [95% CI] n."""
    rows = []
    overall = [s for s in summaries if s.category is None and s.source == source]
    for metric in dict.fromkeys(s.metric for s in overall):
        by = {s.counselor: s for s in overall if s.metric == metric}
        first = next(iter(by.values()))
        scale = scale_label(first.scale_min, first.scale_max)
        label = f"{first.name} {_direction(first)}".strip()
        rows.append([label, scale, *[cell(by.get(c)) for c in counselors]])
    return _table(["metric", "scale", *counselors], rows) if rows else ["(none)"]


def category_table(summaries: Sequence[MetricSummary], counselors: Sequence[str]) -> list[str]:
    """Headline metrics per problem category and counselor (means, n tracks)."""
    by_cat = [s for s in summaries if s.category is not None]
    metrics = [m for m in HEADLINE if any(s.metric == m for s in by_cat)]
    if not metrics:
        return ["(none)"]
    names = {s.metric: s.name for s in by_cat}
    rows = []
    for category in sorted({s.category for s in by_cat if s.category}):
        for counselor in counselors:
            found = {
                s.metric: s for s in by_cat if s.category == category and s.counselor == counselor
            }
            if not found:
                continue
            n = max(s.n for s in found.values())
            rows.append(
                [
                    category,
                    counselor,
                    str(n),
                    *[fmt(getattr(found.get(m), "mean", None)) for m in metrics],
                ]
            )
    return _table(["category", "counselor", "n", *[names[m] for m in metrics]], rows)


def paired_table(diffs: Sequence[PairedDifference]) -> list[str]:
    """Mean paired differences with their intervals."""
    rows = [
        [
            f"{d.name}",
            f"{d.a} − {d.b}",
            str(d.n),
            fmt(d.mean_diff),
            f"[{fmt(d.ci_low)}, {fmt(d.ci_high)}]{'*' if d.clipped else ''}",
            d.verdict,
        ]
        for d in diffs
    ]
    return _table(["metric", "difference", "pairs", "mean", "95% CI", "reading"], rows)


def variance_table(summaries: Sequence[MetricSummary]) -> list[str]:
    """Judge variance: mean within-target SD across repeated samples, per metric and counselor."""
    rows = [
        [s.name, s.counselor, fmt(s.judge_sd), fmt(s.sd)]
        for s in summaries
        if s.category is None and s.source == "judge" and s.judge_sd is not None
    ]
    if not rows:
        return [
            "Each target was judged once; rerun `theramind evaluate --samples N` to measure it."
        ]
    return _table(["metric", "counselor", "judge SD (within target)", "SD across tracks"], rows)


def timeline_table(data: RunData, patient_id: str) -> list[str]:
    """Every session's therapies and the decision at its close, proposed and applied."""
    rows = []
    courses = [c for c in data.courses if c.key.patient_id == patient_id]
    several = len({c.key.seed for c in courses}) > 1
    for course in courses:
        label = course.key.counselor + (f" s{course.key.seed}" if several else "")
        decisions = {d.session_no: d for d in course_decisions(course)}
        for s in course.sessions:
            d = decisions.get(s.session_no)
            proposed = step_text(d.proposed) if d else ""
            applied = step_text(d.applied) if d else ""
            if d and d.overridden:
                applied += " (overridden)"
            reason = re.sub(r"\s+", " ", d.reason)[:300] if d else ""
            used = " + ".join(s.log.therapies) or "—"
            rows.append([label, str(s.session_no), used, proposed, applied, reason])
    header = ["counselor", "session", "therapies used", "proposed at close", "applied", "reason"]
    return _table(header, rows)


def therapy_changes(data: RunData, patient_id: str) -> tuple[int, int]:
    """Return (applied changes, proposed changes not applied) for one patient, all counselors."""
    applied = overridden = 0
    for course in data.courses:
        if course.key.patient_id != patient_id:
            continue
        for d in course_decisions(course):
            applied += d.changes
            overridden += d.overridden and d.proposed.action in ("switch", "adjust")
    return applied, overridden


def _load_records(data: RunData) -> tuple[list[ScoreRecord], bool]:
    path = eval_dir(data.root) / "scores.jsonl"
    records = ScoreStore(path).records() if path.is_file() else []
    if not records:
        log.warning("%s has no scores; reporting objective outcomes only", path)
        return outcome_records(data), False
    return records, any(r.source == "judge" for r in records)


def write_report(
    run_dir: Path | str,
    output_dir: Path | str | None = None,
    *,
    baseline: str | None = None,
    method: CIMethod = "t",
) -> Report:
    """Write `report.md` and its PNG figures for a run (default: `RUN/report/`)."""
    data = load_run(run_dir)
    out = Path(output_dir) if output_dir else data.root / "report"
    figures_dir = out / "figures"
    records, judged = _load_records(data)
    summaries = summarize(records, method=method, by_category=True)
    counselors = [c for c in data.counselors if any(r.counselor == c for r in records)]
    report = Report(out / "report.md", judged=judged)
    lines = _preamble(data, records, method, judged)
    lines += validity_section(data.root)
    figure = radar_chart(summaries, figures_dir / "radar.png")
    lines += ["## Judge scores", ""]
    if judged:
        lines += [*metric_table(summaries, counselors, "judge"), ""]
    else:
        lines += ["No judge scores yet: run `theramind evaluate RUN`.", ""]
    if figure:
        report.figures.append(figure)
        lines += ["![Radar chart of metrics per counselor](figures/radar.png)", ""]
    lines += ["## Objective outcomes (simulator)", ""]
    lines += [*metric_table(summaries, counselors, "outcome"), ""]
    report.figures.append(trajectories(data, figures_dir / "trajectories.png"))
    lines += ["![Per-session trajectories](figures/trajectories.png)", ""]
    lines += ["## By problem category", "", *category_table(summaries, counselors), ""]
    lines += _paired_section(records, counselors, baseline, method)
    lines += ["## Judge variance", "", *variance_table(summaries), ""]
    lines += ["## Therapy timelines", ""]
    for i, patient in enumerate(data.patients):
        lines += [f"### {patient}", ""]
        if i < MAX_TIMELINES:
            png = therapy_timeline(data, patient, figures_dir / f"timeline_{_slug(patient)}.png")
            if png:
                report.figures.append(png)
                lines += [f"![Therapy timeline of {patient}](figures/{png.name})", ""]
        applied, overridden = therapy_changes(data, patient)
        summary = f"{applied} therapy change(s) applied"
        summary += f"; {overridden} proposed change(s) not applied." if overridden else "."
        lines += [summary, "", *timeline_table(data, patient), ""]
    out.mkdir(parents=True, exist_ok=True)
    report.path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return report


def _paired_section(
    records: Sequence[ScoreRecord],
    counselors: Sequence[str],
    baseline: str | None,
    method: CIMethod,
) -> list[str]:
    if len(counselors) < 2:
        return []
    base = baseline if baseline is not None and baseline in counselors else counselors[0]
    lines = [
        "## Paired comparisons",
        "",
        f"{base} minus each other counselor on the same patients and seeds; a difference is "
        "read as real only when its 95% interval excludes zero.",
        "",
    ]
    for other in counselors:
        if other != base:
            diffs = paired_differences(records, base, other, method=method)
            lines += [f"### {base} vs {other}", "", *paired_table(diffs), ""]
    return lines


def _preamble(
    data: RunData, records: Sequence[ScoreRecord], method: CIMethod, judged: bool
) -> list[str]:
    experiment = data.header.get("experiment") or {}
    judges = sorted({r.model for r in records if r.model})
    seeds = sorted({c.key.seed for c in data.courses})
    sessions = max((len(c.sessions) for c in data.courses), default=0)
    ci = (
        "Student-t interval, mean ± t·s/√n, clipped to the metric's scale; a bound cut at the "
        "end of the scale is marked *"
        if method == "t"
        else "percentile bootstrap, 4000 resamples with a fixed seed; it stays within the "
        "observed values, hence on the metric's scale"
    )
    models = experiment.get("models") or {}
    model_text = (
        ", ".join(
            f"{role}: {spec.get('preset', spec) if isinstance(spec, dict) else spec}"
            for role, spec in models.items()
        )
        or "defaults"
    )
    return [
        f"# Evaluation report: {data.experiment}",
        "",
        f"Generated {utcnow():%Y-%m-%d %H:%M} UTC from `{data.root}`.",
        "",
        f"- Counselors: {', '.join(data.counselors)}",
        f"- Patients: {len(data.patients)}; seeds: {', '.join(map(str, seeds))}; up to "
        f"{sessions} sessions each",
        f"- Models of the run: {model_text}; judge: "
        f"{', '.join(judges) if judges else ('none' if not judged else 'unknown')}",
        "",
        "How to read this: each cell is the mean over tracks (one patient under one seed), with "
        f"its 95% confidence interval ({ci}) and n tracks. Sessions are averaged within a track "
        "first, and repeated judge samples within a target. Judge items are strict pass/fail "
        "checks (or anchored ratings) scored by code from the judge's per-item verdicts; a "
        "failed judgment is MISSING, left out of the means and counted. The judge saw only the "
        "words said, under 'Counselor'/'Client' labels and an opaque id. LLM judges tend to "
        "over-rate: compare counselors against each other on the same patients rather than "
        "reading absolute scores. ↑/↓: higher/lower is better. Therapy decisions are shown as "
        "proposed by the counselor at a session's close and as applied to the next session; "
        "they differ where an ablation overrides the counselor (fixed_therapy keeps its first "
        "therapy).",
        "",
    ]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
