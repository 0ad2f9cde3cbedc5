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
from matplotlib.patches import Patch, Rectangle

from theramind.evaluation.aggregate import MetricSummary
from theramind.evaluation.outcomes import responsive_set
from theramind.evaluation.runs import Course, RunData
from theramind.evaluation.stats import mean_ci

log = logging.getLogger(__name__)
DPI = 120
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
THERAPY_COLOURS = (
    "#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
    "#d9d9d9", "#bc80bd",
)  # fmt: skip


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


# -- radar ---------------------------------------------------------------------------------------


def radar_chart(summaries: Sequence[MetricSummary], path: Path, *, title: str = "") -> Path | None:
    """Draw each counselor's mean per metric, scaled to its range.

    The judge's metrics when there are at least three, else every bounded metric.
    """
    rows = [
        s
        for s in summaries
        if s.category is None
        and s.mean is not None
        and s.scale_min is not None
        and s.scale_max is not None
        and s.scale_max > s.scale_min
        and s.higher_is_better is not None
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
    return _save(fig, path)


def _fmt(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:g}"


# -- trajectories --------------------------------------------------------------------------------


Series = dict[str, dict[int, list[float]]]


def trajectory_data(data: RunData) -> dict[str, Series]:
    """Per panel, counselor and session: the values across tracks (session 0: intake)."""
    keys = ("phq9_latent", "gad7_latent", "emotion", "phq9_change", "phq9_self", "alliance")
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


PANELS = (
    ("phq9_latent", "PHQ-9, hidden state", "PHQ-9 (0-27)", None),
    ("gad7_latent", "GAD-7, hidden state", "GAD-7 (0-21)", None),
    ("emotion", "Emotion intensity, perceived in session", "mean intensity", (0.0, 1.0)),
    ("phq9_change", "PHQ-9 change from intake, hidden state", "ΔPHQ-9 (lower is better)", None),
    ("phq9_self", "PHQ-9, self-report after session", "PHQ-9 (0-27)", None),
    ("alliance", "Alliance, self-report after session", "mean item (1-5)", (1.0, 5.0)),
)


def _panel(ax: Any, series: dict[str, dict[int, list[float]]], counselors: Sequence[str]) -> None:
    for i, counselor in enumerate(counselors):
        points = series.get(counselor)
        if not points:
            continue
        xs = sorted(points)
        stats = [mean_ci(points[x]) for x in xs]
        mean = np.array([s.mean for s in stats], dtype=float)
        low = np.array([s.mean if s.low is None else s.low for s in stats], dtype=float)
        high = np.array([s.mean if s.high is None else s.high for s in stats], dtype=float)
        ax.plot(xs, mean, marker="o", color=_colour(i), label=counselor, linewidth=1.8)
        ax.fill_between(xs, low, high, color=_colour(i), alpha=0.15, linewidth=0)


def trajectories(data: RunData, path: Path) -> Path:
    """Draw per-session symptom scores, emotion intensity and alliance: mean and 95% CI band."""
    panels = trajectory_data(data)
    fig = Figure(figsize=(14, 8))
    axes = fig.subplots(2, 3)
    for ax, (key, title, ylabel, limits) in zip(axes.flat, PANELS, strict=True):
        ax.set_title(title, fontsize=10)
        if not panels[key]:
            ax.text(0.5, 0.5, "not recorded in this run", ha="center", va="center", color="#777")
            ax.set_axis_off()
            continue
        _panel(ax, panels[key], data.counselors)
        ax.set_xlabel(
            "session (0 = intake)" if 0 in next(iter(panels[key].values())) else "session"
        )
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if limits:
            ax.set_ylim(*limits)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle("Per-session trajectories: mean over patients × seeds, 95% CI band", fontsize=12)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=10)
    return _save(fig, path)


# -- therapy timeline ----------------------------------------------------------------------------


@dataclass
class Switch:
    """A change of therapy between two sessions and the counselor's stated reason."""

    counselor: str
    seed: int
    after_session: int
    before: list[str]
    after: list[str]
    action: str
    reason: str


def decision_of(close: dict | None) -> tuple[str, str]:
    """Return (action, reason) from a session's close record (empty when none)."""
    if not close:
        return "", ""
    decision = close.get("decision")
    if isinstance(decision, dict):
        return str(decision.get("action", "")), str(decision.get("reason", ""))
    if "therapy" in close:
        return f"chose {close['therapy']}", str(close.get("answer", ""))
    return "", ""


def switches(course: Course) -> list[Switch]:
    """Every session boundary where the therapy changed, with the reason given at the close."""
    out = []
    for prev, nxt in zip(course.sessions, course.sessions[1:], strict=False):
        if set(prev.log.therapies) == set(nxt.log.therapies):
            continue
        action, reason = decision_of(prev.log.counselor_close)
        out.append(
            Switch(
                course.key.counselor,
                course.key.seed,
                prev.session_no,
                list(prev.log.therapies),
                list(nxt.log.therapies),
                action or "change",
                reason or "(no reason recorded)",
            )
        )
    return out


def therapy_timeline(data: RunData, patient_id: str, path: Path) -> Path | None:
    """Draw one patient's therapies per session for every counselor, marking each switch."""
    courses = [c for c in data.courses if c.key.patient_id == patient_id]
    if not courses:
        return None
    seeds = {c.key.seed for c in courses}
    n_sessions = max(len(c.sessions) for c in courses)
    combos = sorted({"+".join(s.log.therapies) for c in courses for s in c.sessions} - {""})
    colour = {combo: THERAPY_COLOURS[i % len(THERAPY_COLOURS)] for i, combo in enumerate(combos)}
    notes: list[str] = []
    fig = Figure(figsize=(max(7.0, 1.3 * n_sessions + 3), 1.6 + 0.55 * len(courses)))
    ax = fig.add_subplot()
    good = responsive_set(courses[0]) or set()
    for row, course in enumerate(courses):
        y = len(courses) - 1 - row
        for s in course.sessions:
            combo = "+".join(s.log.therapies)
            hit = bool(good & set(s.log.therapies))
            ax.add_patch(
                Rectangle(
                    (s.session_no - 0.45, y - 0.35),
                    0.9,
                    0.7,
                    facecolor=colour.get(combo, "#ffffff"),
                    edgecolor="#1a7f37" if hit else "#888888",
                    linewidth=2.5 if hit else 0.8,
                )
            )
            ax.text(s.session_no, y, combo or "—", ha="center", va="center", fontsize=8)
        for sw in switches(course):
            notes.append(
                f"{len(notes) + 1}. {_row_label(course, seeds)}, after session {sw.after_session}: "
                f"{sw.action} {'+'.join(sw.before) or '—'} → {'+'.join(sw.after) or '—'}: "
                f"{sw.reason}"
            )
            x = sw.after_session + 0.5
            ax.plot([x, x], [y - 0.42, y + 0.42], color="#d62728", linewidth=2)
            ax.text(x, y + 0.47, str(len(notes)), color="#d62728", ha="center", fontsize=8)
    ax.set_xlim(0.4, n_sessions + 0.6)
    ax.set_ylim(-0.6, len(courses) - 0.2)
    ax.set_xticks(range(1, n_sessions + 1))
    ax.set_xlabel("session")
    ax.set_yticks(range(len(courses)))
    ax.set_yticklabels([_row_label(c, seeds) for c in reversed(courses)], fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    profile = courses[0].profile
    who = f"{profile.pseudonym}, {profile.category}" if profile else courses[0].category
    ax.set_title(f"Therapy timeline: {patient_id} ({who})", fontsize=11)
    legend = [
        Patch(facecolor="white", edgecolor="#1a7f37", linewidth=2.5, label="responsive therapy"),
        Patch(facecolor="white", edgecolor="#d62728", label="switch (numbered below)"),
    ]
    ax.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    if notes:
        wrapped = "\n".join(textwrap.fill(n, 120, subsequent_indent="    ") for n in notes[:12])
        more = f"\n… {len(notes) - 12} more in the report" if len(notes) > 12 else ""
        ax.annotate(
            wrapped + more,
            xy=(0, 0),
            xycoords="axes fraction",
            xytext=(-60, -40),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=7.5,
        )
    return _save(fig, path)


def _row_label(course: Course, seeds: set[int]) -> str:
    return course.key.counselor if len(seeds) == 1 else f"{course.key.counselor} s{course.key.seed}"
