"""Figures for the report, drawn with matplotlib's Agg canvas (no display, no global state)."""

from __future__ import annotations

import logging
import math
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from theramind.evaluation.aggregate import MetricSummary
from theramind.evaluation.runs import RunData
from theramind.evaluation.stats import Bounds, Interval, mean_ci

log = logging.getLogger(__name__)
DPI = 120
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def save_figure(fig: Figure, path: Path) -> Path:
    """Render a figure to a PNG file at `path` (folders made as needed)."""
    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


# -- radar ---------------------------------------------------------------------------------------


def radar_chart(summaries: Sequence[MetricSummary], path: Path, *, title: str = "") -> Path | None:
    """Draw each counselor's mean per metric, scaled to its range.

    The judge's metrics when there are at least three, else every bounded metric for which
    higher is better (so the outer ring is always the better end).
    """
    rows = [
        s
        for s in summaries
        if s.category is None
        and s.mean is not None
        and s.scale_min is not None
        and s.scale_max is not None
        and s.scale_max > s.scale_min
        and s.higher_is_better is True
    ]
    judged = [s for s in rows if s.source == "judge"]
    if len({s.metric for s in judged}) >= 3:
        rows = judged
    metrics = list(dict.fromkeys(s.metric for s in rows))
    if len(metrics) < 3:
        log.info("radar chart skipped: fewer than three bounded metrics")
        return None
    counselors = list(dict.fromkeys(s.counselor for s in rows))
    info = {s.metric: s for s in rows}
    angles = np.linspace(0, 2 * math.pi, len(metrics), endpoint=False)
    fig = Figure(figsize=(7.5, 7.5))
    ax: Any = fig.add_subplot(projection="polar")
    ax.set_theta_offset(math.pi / 2)
    ax.set_theta_direction(-1)
    for i, counselor in enumerate(counselors):
        by = {s.metric: s for s in rows if s.counselor == counselor}
        values = []
        for m in metrics:
            s = by.get(m)
            if s is None or s.mean is None:
                values.append(np.nan)
                continue
            lo, hi = s.scale_min or 0.0, s.scale_max or 1.0
            values.append((s.mean - lo) / (hi - lo))
        closed = np.array([*values, values[0]])
        theta = np.array([*angles, angles[0]])
        ax.plot(theta, closed, color=_colour(i), linewidth=2, label=counselor)
        ax.fill(theta, np.nan_to_num(closed), color=_colour(i), alpha=0.12)
    labels = []
    for m in metrics:
        s = info[m]
        labels.append(
            f"{textwrap.fill(s.name or m, 16)}\n({_fmt(s.scale_min)}–{_fmt(s.scale_max)})"
        )
    ax.set_xticks(angles)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_yticklabels(["25%", "50%", "75%", "100%"], fontsize=7, color="#555555")
    ax.legend(loc="upper right", bbox_to_anchor=(1.25, 1.12), fontsize=9)
    ax.set_title(title or "Mean score per counselor (share of each scale)", pad=28, fontsize=11)
    return save_figure(fig, path)


def _fmt(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:g}"


# -- trajectories --------------------------------------------------------------------------------


Series = dict[str, dict[int, list[float]]]
OVERLAY_MAX = 2
"""Up to this many counselors share one panel; more get one panel each (small multiples)."""
BAND_ALPHA = 0.25
NOTE: dict[str, Any] = {"ha": "center", "va": "center", "color": "#777777", "fontsize": 8}


def trajectory_data(data: RunData) -> dict[str, Series]:
    """Per panel, counselor and session: the values across tracks (session 0: intake)."""
    keys = [panel.key for panel in PANELS]
    panels: dict[str, Series] = {k: defaultdict(lambda: defaultdict(list)) for k in keys}
    for course in data.courses:
        name = course.key.counselor
        first = course.sessions[0].log.latent_before
        panels["phq9_latent"][name][0].append(first.phq9)
        panels["gad7_latent"][name][0].append(first.gad7)
        panels["phq9_change"][name][0].append(0.0)
        for s in course.sessions:
            no, log_ = s.session_no, s.log
            panels["phq9_latent"][name][no].append(log_.latent_after.phq9)
            panels["gad7_latent"][name][no].append(log_.latent_after.gad7)
            panels["phq9_change"][name][no].append(log_.latent_after.phq9 - first.phq9)
            panels["phq9_self"][name][no].append(float(log_.questionnaire.phq9))
            a = log_.questionnaire.alliance
            panels["alliance"][name][no].append((a.goal + a.task + a.bond + a.understood) / 4)
            intensity = [t.response.perception.intensity for t in s.turns if t.response.perception]
            if intensity:
                panels["emotion"][name][no].append(float(np.mean(intensity)))
    return {k: {c: dict(v) for c, v in series.items()} for k, series in panels.items()}


@dataclass(frozen=True)
class PanelSpec:
    """One trajectory panel: what it shows and the scale its values (and bands) live on."""

    key: str
    title: str
    ylabel: str
    bounds: tuple[float, float]
    fixed: bool = False
    """Show the whole scale (short scales), rather than the range the bands take."""


PANELS = (
    PanelSpec("phq9_latent", "PHQ-9, hidden state", "PHQ-9 (0-27)", (0.0, 27.0)),
    PanelSpec("gad7_latent", "GAD-7, hidden state", "GAD-7 (0-21)", (0.0, 21.0)),
    PanelSpec(
        "emotion", "Emotion intensity, perceived in session", "mean intensity", (0.0, 1.0), True
    ),
    PanelSpec(
        "phq9_change", "PHQ-9 change from intake, hidden", "ΔPHQ-9 (lower is better)", (-27, 27)
    ),
    PanelSpec("phq9_self", "PHQ-9, self-report after session", "PHQ-9 (0-27)", (0.0, 27.0)),
    PanelSpec("alliance", "Alliance, self-report after session", "mean item (1-5)", (1, 5), True),
)


@dataclass(frozen=True)
class Band:
    """A counselor's mean per session and its 95% interval, clipped to the panel's scale."""

    xs: list[int]
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def band(points: dict[int, list[float]], bounds: Bounds) -> Band:
    """Return the mean and clipped 95% band over tracks at each session."""
    xs = sorted(points)
    stats: list[Interval] = [mean_ci(points[x], bounds=bounds) for x in xs]
    mean = np.array([s.mean for s in stats], dtype=float)
    low = np.array([s.mean if s.low is None else s.low for s in stats], dtype=float)
    high = np.array([s.mean if s.high is None else s.high for s in stats], dtype=float)
    return Band(xs, mean, low, high)


def _limits(spec: PanelSpec, bands: Sequence[Band]) -> tuple[float, float]:
    """Y limits that hold every band whole, within the scale (the whole scale if fixed)."""
    lo, hi = spec.bounds
    if spec.fixed or not bands:
        return lo, hi
    low = min(float(np.min(b.low)) for b in bands)
    high = max(float(np.max(b.high)) for b in bands)
    pad = max((high - low) * 0.08, (hi - lo) * 0.02)
    return max(lo, low - pad), min(hi, high + pad)


def _style(ax: Any, spec: PanelSpec, limits: tuple[float, float], intake: bool) -> None:
    ax.set_ylim(*limits)
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("session (0 = intake)" if intake else "session", fontsize=8)


def _overlay(fig: Figure, data: RunData, panels: dict[str, Series]) -> None:
    axes = fig.subplots(2, 3)
    for ax, spec in zip(axes.flat, PANELS, strict=True):
        ax.set_title(spec.title, fontsize=10)
        series = panels[spec.key]
        if not series:
            ax.text(0.5, 0.5, "not recorded in this run", ha="center", va="center", color="#777")
            ax.set_axis_off()
            continue
        bands = []
        for i, counselor in enumerate(data.counselors):
            if not series.get(counselor):
                continue
            b = band(series[counselor], spec.bounds)
            bands.append(b)
            ax.plot(b.xs, b.mean, marker="o", color=_colour(i), label=counselor, linewidth=1.8)
            ax.fill_between(b.xs, b.low, b.high, color=_colour(i), alpha=BAND_ALPHA, linewidth=0)
        _style(ax, spec, _limits(spec, bands), 0 in next(iter(series.values())))
        ax.set_ylabel(spec.ylabel)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=10)


def _small_multiples(fig: Figure, data: RunData, panels: dict[str, Series]) -> None:
    specs = [spec for spec in PANELS if panels[spec.key]]
    counselors = data.counselors
    axes = fig.subplots(len(specs), len(counselors), squeeze=False, sharex="row", sharey="row")
    for r, spec in enumerate(specs):
        series = panels[spec.key]
        bands = {c: band(series[c], spec.bounds) for c in counselors if series.get(c)}
        limits = _limits(spec, list(bands.values()))
        intake = 0 in next(iter(series.values()))
        for col, counselor in enumerate(counselors):
            ax = axes[r][col]
            for other, b in bands.items():
                if other != counselor:
                    ax.plot(b.xs, b.mean, color="#b0b0b0", linewidth=0.9, zorder=1)
            own = bands.get(counselor)
            if own is None:
                ax.text(0.5, 0.5, "not recorded", transform=ax.transAxes, **NOTE)
            else:
                colour = _colour(col)
                ax.fill_between(
                    own.xs, own.low, own.high, color=colour, alpha=BAND_ALPHA, linewidth=0
                )
                ax.plot(own.xs, own.mean, marker="o", markersize=3.5, color=colour, linewidth=1.8)
            _style(ax, spec, limits, intake)
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.set_title(counselor, fontsize=10, color=_colour(col), fontweight="bold")
            if col == 0:
                ax.set_ylabel(f"{textwrap.fill(spec.title, 22)}\n{spec.ylabel}", fontsize=8)
            if r < len(specs) - 1:
                ax.set_xlabel("")
    fig.tight_layout(rect=(0, 0, 1, 0.97))


def trajectories_figure(data: RunData) -> Figure:
    """Per-session symptom scores, emotion intensity and alliance: mean and clipped 95% band.

    Up to `OVERLAY_MAX` counselors share each panel; with more, each counselor gets its own
    column (its band in colour, the others' means in grey for reference), one row per measure.
    """
    panels = trajectory_data(data)
    title = "Per-session trajectories: mean over patients × seeds, 95% CI band (on the scale)"
    if len(data.counselors) <= OVERLAY_MAX:
        fig = Figure(figsize=(14, 8))
        _overlay(fig, data, panels)
    else:
        title += "; grey lines: the other counselors' means"
        rows = sum(1 for spec in PANELS if panels[spec.key])
        fig = Figure(figsize=(2.7 * len(data.counselors) + 1.2, 2.0 * rows + 0.8))
        _small_multiples(fig, data, panels)
    fig.suptitle(title, fontsize=12)
    return fig


def trajectories(data: RunData, path: Path) -> Path:
    """Write the trajectories figure to `path`."""
    return save_figure(trajectories_figure(data), path)
