"""Therapy decisions kept apart (proposed vs applied) in records, tables and the timeline figure,
and trajectory bands that stay on their scale and inside their axes.

A scripted counselor model proposes an adjustment after session 1 and a switch after session 2.
TheraMind applies both; the fixed-therapy ablation applies neither.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from scripted import Counselor, enum_of
from theramind.evaluation.decisions import course_decisions
from theramind.evaluation.plots import PANELS, trajectories_figure
from theramind.evaluation.report import timeline_table, write_report
from theramind.evaluation.runs import load_run
from theramind.evaluation.timeline import MARKS, timeline_figure
from theramind.llm import BaseBackend, Request, ScriptedBackend
from theramind.simulation import ExperimentConfig, ExperimentRunner
from theramind.simulation.records import SessionLog, TrackKey, read_jsonl

PATIENT = "stress-hana"
OTHER = "anxiety-priya"


@dataclass
class AdjustThenSwitch(Counselor):
    """Rates session 1 partly effective (and adjusts), every later session not effective
    (and switches)."""

    closes: int = 0

    def __call__(self, request: Request) -> Any:
        name = request.schema_name
        if name in ("EfficacyReport", "EfficacyVerdict"):
            self.closes += 1
            self.verdict = "partially_effective" if self.closes == 1 else "not_effective"
        out = super().__call__(request)
        if name == "TherapyDecision":
            actions, therapies = enum_of(request, "action"), enum_of(request, "therapies")
            if "adjust" in actions:
                out.update(action="adjust", therapies=[therapies[-1]])
            elif "switch" in actions:
                out.update(action="switch", therapies=[therapies[0]])
        return out


def backends(key: TrackKey) -> Mapping[str, BaseBackend]:
    return {"counselor": ScriptedBackend(handler=AdjustThenSwitch())}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("decisions") / "run"
    config = ExperimentConfig.model_validate(
        {
            "name": "decisions",
            "counselors": ["theramind", "fixed_therapy", "plain"],
            "patients": [PATIENT, OTHER],
            "sessions": 3,
            "models": {"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
            "patient": {"kind": "scripted"},
            "memory": {"backend": "inmemory", "embedding_model": "hashing"},
            "output_dir": str(out),
        }
    )
    summary = ExperimentRunner(config, backends=backends).run()
    assert summary.tracks_failed == 0 and summary.sessions_run == 18
    return out


def sessions_of(run_dir: Path, counselor: str) -> list[SessionLog]:
    rows = read_jsonl(run_dir / "sessions.jsonl", SessionLog)
    mine = (s for s in rows if s.counselor == counselor and s.patient_id == PATIENT)
    return sorted(mine, key=lambda s: s.session_no)


def test_records_keep_the_proposed_and_the_applied_decision(run_dir: Path) -> None:
    mind, fixed = sessions_of(run_dir, "theramind"), sessions_of(run_dir, "fixed_therapy")
    for s in mind:
        assert s.decision is not None and s.decision.proposed == s.decision.applied
    assert [s.decision.applied.action for s in mind if s.decision] == ["adjust", "switch", "switch"]
    for before, after in itertools.pairwise(mind):
        assert before.decision is not None
        assert set(after.therapies) == set(before.decision.applied.therapies)
    first = fixed[0].therapies
    for s in fixed:
        assert s.therapies == first
        assert s.decision is not None
        assert s.decision.applied.action == "keep" and s.decision.applied.therapies == first
    assert [s.decision.proposed.action for s in fixed if s.decision] == [
        "adjust",
        "switch",
        "switch",
    ]
    assert all(s.decision is None for s in sessions_of(run_dir, "plain"))


def test_decisions_and_the_timeline_table_show_both(run_dir: Path) -> None:
    data = load_run(run_dir)
    by = {c.key.counselor: c for c in data.courses if c.key.patient_id == PATIENT}
    fixed = course_decisions(by["fixed_therapy"])
    assert all(d.overridden and not d.changes and d.kind == "keep" for d in fixed)
    mind = course_decisions(by["theramind"])
    assert [d.kind for d in mind] == ["adjust", "switch", "switch"]
    assert not any(d.overridden for d in mind)
    table = timeline_table(data, PATIENT)
    fixed_rows = [r for r in table if r.startswith("| fixed_therapy |")]
    assert len(fixed_rows) == 3
    assert "| adjust → " in fixed_rows[0] and "(overridden)" in fixed_rows[0]
    assert "| switch → " in fixed_rows[1] and "| keep " in fixed_rows[1]
    assert not any("(overridden)" in r for r in table if r.startswith("| theramind |"))


def _style(artist: Any) -> tuple[str, str, str]:
    return (str(artist.get_color()), str(artist.get_linestyle()), str(artist.get_marker()))


def test_timeline_marks_each_kind_in_one_style_and_its_legend_matches(run_dir: Path) -> None:
    fig = timeline_figure(load_run(run_dir), PATIENT)
    assert fig is not None
    ax = fig.axes[0]
    drawn: dict[str, set[tuple[str, str, str]]] = {}
    counts: dict[str, int] = {}
    for line in ax.get_lines():
        label = str(line.get_gid()).removeprefix("decision:")
        drawn.setdefault(label, set()).add(_style(line))
        counts[label] = counts.get(label, 0) + 1
    # theramind: adjust, switch, switch; fixed_therapy: three proposals, none applied.
    assert counts == {
        MARKS["adjust"].label: 1,
        MARKS["switch"].label: 2,
        MARKS["not_applied"].label: 3,
    }
    assert all(len(styles) == 1 for styles in drawn.values())  # one style per kind
    assert len({next(iter(styles)) for styles in drawn.values()}) == 3  # adjust is no switch
    legend = ax.get_legend()
    entries = dict(
        zip([t.get_text() for t in legend.get_texts()], legend.legend_handles, strict=True)
    )
    assert set(entries) == {*drawn, "responsive therapy"} or set(entries) == set(drawn)
    for label, styles in drawn.items():
        assert _style(entries[label]) == next(iter(styles)), label


def _bands(ax: Any) -> list[np.ndarray]:
    return [c.get_paths()[0].vertices for c in ax.collections if isinstance(c, PolyCollection)]


def _check_bands_inside(fig: Any, specs: list[Any]) -> int:
    """Every band lies on its panel's scale and inside the panel's y limits."""
    checked = 0
    for ax, spec in zip(fig.axes, specs, strict=True):
        low, high = ax.get_ylim()
        lo, hi = spec.bounds
        for vertices in _bands(ax):
            ys = vertices[:, 1]
            assert low - 1e-9 <= ys.min() and ys.max() <= high + 1e-9, spec.key
            assert lo - 1e-9 <= ys.min() and ys.max() <= hi + 1e-9, spec.key
            checked += 1
    return checked


def test_trajectory_bands_stay_inside_their_axes(run_dir: Path) -> None:
    data = load_run(run_dir)
    many = trajectories_figure(data)  # three counselors: one column each, one row per measure
    assert len(many.axes) == len(PANELS) * 3
    assert [ax.get_title() for ax in many.axes[:3]] == data.counselors
    rows = [spec for spec in PANELS for _ in range(3)]
    # Every measure has a band for theramind and fixed_therapy; plain perceives no emotion.
    assert _check_bands_inside(many, rows) >= len(PANELS) * 2
    two = dataclasses.replace(
        data,
        courses=[c for c in data.courses if c.key.counselor != "plain"],
        counselors=["theramind", "fixed_therapy"],
    )
    overlay = trajectories_figure(two)  # two counselors share each panel
    assert len(overlay.axes) == len(PANELS)
    assert _check_bands_inside(overlay, list(PANELS)) == len(PANELS) * 2


SCALE = re.compile(r"^(-?[\d.]+)–(-?[\d.]+)$")
INTERVAL = re.compile(r"\[(-?[\d.]+), (-?[\d.]+)\](\*?)")


@pytest.mark.parametrize("method", ["t", "bootstrap"])
def test_report_intervals_stay_on_each_scale_and_it_says_how(
    run_dir: Path, tmp_path: Path, method: str
) -> None:
    report = write_report(run_dir, tmp_path / method, method=method)  # type: ignore[arg-type]
    text = report.path.read_text()
    how = "clipped to the metric's scale" if method == "t" else "stays within the observed values"
    assert how in text
    checked = cut = 0
    for row in text.splitlines():
        cells = [c.strip() for c in row.strip("|").split("|")]
        if len(cells) < 3 or not (scale := SCALE.match(cells[1])):
            continue
        lo, hi = float(scale[1]), float(scale[2])
        for cell in cells[2:]:
            for low, high, star in INTERVAL.findall(cell):
                assert lo <= float(low) <= float(high) <= hi, row
                checked += 1
                cut += star == "*"
    assert checked >= 10
    assert cut == 0 if method == "bootstrap" else cut > 0  # two tracks: t intervals are wide
    timeline = text[text.index("## Therapy timelines") :]
    assert "proposed change(s) not applied" in timeline and "(overridden)" in timeline
