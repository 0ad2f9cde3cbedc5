"""The therapy timeline figure.

One patient's therapies per session for every counselor, with
each closing decision marked by its kind (switch, adjust, or proposed but not applied).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from theramind.evaluation.decisions import Decision, course_decisions, step_text
from theramind.evaluation.outcomes import responsive_set
from theramind.evaluation.plots import save_figure
from theramind.evaluation.runs import Course, RunData

THERAPY_COLOURS = (
    "#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
    "#d9d9d9", "#bc80bd",
)  # fmt: skip
RESPONSIVE_EDGE = "#1a7f37"
MAX_NOTES = 12
LineStyle = Literal["-", "--", ":", "-."]


@dataclass(frozen=True)
class MarkStyle:
    """How one kind of decision is drawn between two sessions (and in the legend)."""

    colour: str
    linestyle: LineStyle
    marker: str
    label: str


MARKS: dict[str, MarkStyle] = {
    "switch": MarkStyle("#d62728", "-", "s", "switch applied"),
    "adjust": MarkStyle("#ff7f0e", "--", "^", "adjust applied"),
    "not_applied": MarkStyle("#7f7f7f", ":", "x", "change proposed, not applied"),
}
"""One style per decision kind; the legend is built from the same entries."""


def mark_kind(decision: Decision) -> str | None:
    """Return which mark a decision gets on the timeline.

    Its applied kind if it changes the therapy, `not_applied`
    for a proposed change that was overridden, None when nothing changed or was proposed.
    """
    if decision.changes:
        return decision.kind
    if decision.overridden and decision.proposed.action in ("switch", "adjust"):
        return "not_applied"
    return None


def note_text(decision: Decision, label: str, last: bool = False) -> str:
    """One numbered note's text: who, when, what was proposed and applied, and why.

    `last`: the decision closed the last session in the run (it applies to one not run).
    """
    later = f" (for session {decision.session_no + 1}, not run)" if last else ""
    head = f"{label}, after session {decision.session_no}{later}: "
    before = " + ".join(decision.before) or "—"
    if decision.overridden:
        what = (
            f"proposed {step_text(decision.proposed)}, applied {step_text(decision.applied)} "
            f"(from {before})"
        )
    else:
        what = f"{step_text(decision.applied)} (from {before})"
    reason = " ".join(decision.reason.split()) or "(no reason recorded)"
    return f"{head}{what}: {reason}"


def _row_label(course: Course, seeds: set[int]) -> str:
    return course.key.counselor if len(seeds) == 1 else f"{course.key.counselor} s{course.key.seed}"


def _mark(ax: Axes, x: float, y: float, style: MarkStyle, number: int) -> None:
    ax.plot(
        [x, x],
        [y - 0.33, y + 0.4],
        color=style.colour,
        linestyle=style.linestyle,
        linewidth=2,
        marker=style.marker,
        markevery=[1],
        markersize=6,
        gid=f"decision:{style.label}",
    )
    ax.text(x, y + 0.5, str(number), color=style.colour, ha="center", va="bottom", fontsize=8)


def legend_handles(kinds: Sequence[str], responsive: bool) -> list[Artist]:
    """The legend entries for the decision kinds drawn (and the responsive-therapy box)."""
    handles: list[Artist] = []
    if responsive:
        handles.append(
            Patch(
                facecolor="white",
                edgecolor=RESPONSIVE_EDGE,
                linewidth=2.5,
                label="responsive therapy",
            )
        )
    for kind in MARKS:
        if kind in kinds:
            s = MARKS[kind]
            handles.append(
                Line2D(
                    [],
                    [],
                    color=s.colour,
                    linestyle=s.linestyle,
                    linewidth=2,
                    marker=s.marker,
                    markersize=6,
                    label=s.label,
                )
            )
    return handles


def timeline_figure(data: RunData, patient_id: str) -> Figure | None:
    """Draw one patient's therapies per session for every counselor, marking each decision."""
    courses = [c for c in data.courses if c.key.patient_id == patient_id]
    if not courses:
        return None
    seeds = {c.key.seed for c in courses}
    n_sessions = max(len(c.sessions) for c in courses)
    combos = sorted({"+".join(s.log.therapies) for c in courses for s in c.sessions} - {""})
    colour = {combo: THERAPY_COLOURS[i % len(THERAPY_COLOURS)] for i, combo in enumerate(combos)}
    notes: list[str] = []
    kinds: list[str] = []
    fig = Figure(figsize=(max(7.0, 1.3 * n_sessions + 3), 1.6 + 0.75 * len(courses)))
    ax = fig.add_subplot()
    good = responsive_set(courses[0]) or set()
    any_hit = False
    for row, course in enumerate(courses):
        y = len(courses) - 1 - row
        for s in course.sessions:
            combo = "+".join(s.log.therapies)
            hit = bool(good & set(s.log.therapies))
            any_hit = any_hit or hit
            ax.add_patch(
                Rectangle(
                    (s.session_no - 0.45, y - 0.35),
                    0.9,
                    0.7,
                    facecolor=colour.get(combo, "#ffffff"),
                    edgecolor=RESPONSIVE_EDGE if hit else "#888888",
                    linewidth=2.5 if hit else 0.8,
                )
            )
            ax.text(s.session_no, y, combo or "—", ha="center", va="center", fontsize=8)
        for decision in course_decisions(course):
            kind = mark_kind(decision)
            if kind is None:
                continue
            kinds.append(kind)
            last = decision.session_no == course.sessions[-1].session_no
            label = _row_label(course, seeds)
            notes.append(f"{len(notes) + 1}. {note_text(decision, label, last)}")
            _mark(ax, decision.session_no + 0.5, y, MARKS[kind], len(notes))
    ax.set_xlim(0.4, n_sessions + 0.75)
    ax.set_ylim(-0.6, len(courses) - 0.1)
    ax.set_xticks(range(1, n_sessions + 1))
    ax.set_xlabel("session (marks between sessions: the decision taken at the close)")
    ax.set_yticks(range(len(courses)))
    ax.set_yticklabels([_row_label(c, seeds) for c in reversed(courses)], fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    profile = courses[0].profile
    who = f"{profile.pseudonym}, {profile.category}" if profile else courses[0].category
    ax.set_title(f"Therapy timeline: {patient_id} ({who})", fontsize=11)
    handles = legend_handles(kinds, any_hit)
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    if notes:
        shown = notes[:MAX_NOTES]
        wrapped = "\n".join(textwrap.fill(n, 120, subsequent_indent="    ") for n in shown)
        more = f"\n… {len(notes) - MAX_NOTES} more in the report" if len(notes) > MAX_NOTES else ""
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
    return fig


def therapy_timeline(data: RunData, patient_id: str, path: Path) -> Path | None:
    """Write one patient's therapy timeline to `path` (None when the run has no such patient)."""
    fig = timeline_figure(data, patient_id)
    return save_figure(fig, path) if fig is not None else None
