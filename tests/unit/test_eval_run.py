"""End to end on a simulated run: a scripted good and a scripted poor counselor treat the same
patients; the objective outcomes must rank good above poor, and the report must render.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripted import Counselor, enum_of, last_user
from theramind.evaluation.aggregate import paired_differences, summarize, track_values
from theramind.evaluation.evaluate import EvalOptions, evaluate_run
from theramind.evaluation.report import write_report
from theramind.evaluation.runs import load_run
from theramind.llm import BaseBackend, Request, ScriptedBackend
from theramind.simulation import ExperimentConfig, ExperimentRunner
from theramind.simulation.patient import KINDS
from theramind.simulation.phrases import KIND_LINES
from theramind.simulation.profiles import load_profiles
from theramind.simulation.records import TrackKey

PATIENTS = ("stress-hana", "family-aisha")
SEEDS = (0, 1)
PROFILES = load_profiles()
PNG = b"\x89PNG\r\n\x1a\n"


def _cue(line: str) -> str:
    first = re.split(r"(?<=[.?!])\s", line)[0]
    return first.split("{")[0].lower().rstrip(".?!, ")[:22]


NEGATIVE_CUES = tuple(
    c for k in KINDS["negative"] for line in KIND_LINES[k] if len(c := _cue(line)) >= 8
)


def sounds_negative(text: str) -> bool:
    """Whether a scripted patient line comes from a negative-attitude phrase bank."""
    low = text.lower()
    return any(cue in low for cue in NEGATIVE_CUES)


@dataclass
class Steered(Counselor):
    """The scripted counselor model, steered to one therapy and to reading attitudes right or
    exactly wrong (so its strategies fit or misfit the patient)."""

    therapy: str = "cbt"
    misread: bool = False

    def __call__(self, request: Request) -> Any:
        out = super().__call__(request)
        name = request.schema_name
        if name == "Perception":
            negative = sounds_negative(last_user(request)) != self.misread
            out["attitude"] = "negative" if negative else "positive"
            out["resistance"] = False
        elif name == "TherapyDecision":
            actions, therapies = enum_of(request, "action"), enum_of(request, "therapies")
            out["action"] = "keep" if "keep" in actions else actions[0]
            out["therapies"] = [self.therapy if self.therapy in therapies else therapies[0]]
        return out


def backends(key: TrackKey) -> Mapping[str, BaseBackend]:
    profile = PROFILES[key.patient_id]
    if key.counselor == "good":
        handler = Steered(therapy=profile.responsive_therapies[0])
    else:
        worst = min(profile.responsiveness, key=profile.responsiveness.__getitem__)
        handler = Steered(therapy=worst, misread=True)
    return {"counselor": ScriptedBackend(handler=handler)}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "run"
    config = ExperimentConfig.model_validate(
        {
            "name": "good-vs-poor",
            "counselors": [
                {"name": "good", "kind": "theramind"},
                {"name": "poor", "kind": "theramind"},
            ],
            "patients": list(PATIENTS),
            "sessions": 3,
            "seeds": list(SEEDS),
            "models": {"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
            "patient": {"kind": "scripted"},
            "memory": {"backend": "inmemory", "embedding_model": "hashing"},
            "concurrency": 4,
            "output_dir": str(out),
        }
    )
    summary = ExperimentRunner(config, backends=backends).run()
    assert summary.tracks_failed == 0 and summary.sessions_run == 2 * 2 * 2 * 3
    return out


def test_objective_outcomes_rank_good_above_poor(run_dir: Path) -> None:
    result = evaluate_run(run_dir, options=EvalOptions(judge=False))
    assert result.judged == 0 and result.outcomes_written > 0
    values = track_values(result.records)
    for seed in SEEDS:
        for patient in PATIENTS:
            unit = (seed, patient)

            def v(metric: str, who: str, unit: tuple[int, str] = unit) -> float:
                value = values[(metric, who, unit)]
                assert value is not None
                return value

            assert v("responsive_fraction", "good") == 1.0
            assert v("responsive_fraction", "poor") == 0.0
            assert v("sessions_to_responsive", "good") == 1.0
            assert v("sessions_to_responsive", "poor") == 4.0  # never: counted as sessions + 1
            assert v("understood", "good") > v("understood", "poor")
            assert v("phq9_change_latent", "good") < v("phq9_change_latent", "poor")
            assert v("gad7_change_latent", "good") < v("gad7_change_latent", "poor")
    rows = {(s.metric, s.counselor): s for s in summarize(result.records)}
    assert rows[("alliance_self", "good")].mean > rows[("alliance_self", "poor")].mean  # type: ignore[operator]
    diffs = {d.metric: d for d in paired_differences(result.records, "good", "poor")}
    assert diffs["phq9_change_latent"].n == 4
    assert diffs["phq9_change_latent"].verdict == "good better"
    assert diffs["responsive_fraction"].verdict == "good better"


def test_judge_and_report_render_figures(run_dir: Path) -> None:
    judge = ScriptedBackend(seed=1)  # schema-valid, arbitrary verdicts
    options = EvalOptions(rubrics=["therapeutic_alliance", "interaction", "coherence"])
    result = evaluate_run(run_dir, options=options, backends={"judge": judge})
    assert result.judged == 2 * 4 * 3 * 2 + 2 * 4 and result.judge_missing == 0
    strategies = {
        t.response.strategy for c in load_run(run_dir).courses for s in c.sessions for t in s.turns
    }
    transcripts = "\n".join(
        m["content"] for c in judge.calls_for("judge") for m in c.messages if m["role"] == "user"
    )
    assert "<transcript" in transcripts
    assert not [s for s in strategies if s and s in transcripts]

    report = write_report(run_dir)
    names = {p.name for p in report.figures}
    assert {"radar.png", "trajectories.png"} <= names
    assert {f"timeline_{p}.png" for p in PATIENTS} <= names
    for path in report.figures:
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, path
        width, height = struct.unpack(">II", data[16:24])
        assert width > 300 and height > 150, path
    text = report.path.read_text()
    for heading in ("## Judge scores", "## Objective outcomes", "## Paired comparisons"):
        assert heading in text
    assert "figures/radar.png" in text and "| Therapeutic Alliance ↑ | 0–3 |" in text
    assert "### good vs poor" in text
