"""`theramind export`: a run as messages JSONL and PsychEval cases, judged again from outside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from theramind.cli import app
from theramind.simulation import ExperimentConfig, ExperimentRunner
from theramind.simulation.records import SessionLog, TurnLog, read_jsonl


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "run"
    exp = ExperimentConfig.model_validate(
        {
            "name": "export",
            "counselors": ["theramind"],
            "patients": ["anxiety-priya", "zh-emotion-lin"],
            "sessions": 2,
            "round_cap": 3,
            "models": {"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
            "memory": {"backend": "chroma", "embedding_model": "hashing"},
            "output_dir": str(out),
        }
    )
    assert ExperimentRunner(exp).run().tracks_failed == 0
    return out


def test_messages_export_has_every_turn_and_no_hidden_state(run_dir: Path) -> None:
    target = run_dir / "m.jsonl"
    result = CliRunner().invoke(app, ["export", str(run_dir), "-f", "messages", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert "Exported 4 sessions" in result.output
    lines = [json.loads(x) for x in target.read_text(encoding="utf-8").splitlines()]
    turns = read_jsonl(run_dir / "turns.jsonl", TurnLog)
    for line in lines:
        mine = [
            t
            for t in turns
            if t.patient_id == line["patient_id"] and t.session_no == line["session_no"]
        ]
        users = [m["content"] for m in line["messages"] if m["role"] == "user"]
        replies = [m["content"] for m in line["messages"] if m["role"] == "assistant"]
        assert users == [t.patient.text for t in sorted(mine, key=lambda t: t.round)]
        assert replies[1:] == [t.response.reply for t in sorted(mine, key=lambda t: t.round)]
    text = target.read_text(encoding="utf-8")
    assert "phq9" not in text and "responsiveness" not in text and "attitude" not in text
    zh = [x for x in lines if x["patient_id"] == "zh-emotion-lin"]
    assert zh and all(x["language"] == "zh" for x in zh)


def test_psycheval_export_lays_out_courses_with_summaries(run_dir: Path) -> None:
    target = run_dir / "p.json"
    result = CliRunner().invoke(app, ["export", str(run_dir), "-f", "psycheval", "-o", str(target)])
    assert result.exit_code == 0, result.output
    cases = json.loads(target.read_text(encoding="utf-8"))
    assert len(cases) == 2
    sessions = read_jsonl(run_dir / "sessions.jsonl", SessionLog)
    for case in cases:
        assert [s["session_number"] for s in case["sessions"]] == [1, 2]
        assert all(s["dialogue"] and s["session_summary"] for s in case["sessions"])
        assert case["client_info"]["main_problem"]
    n_sessions = sum(len(c["sessions"]) for c in cases)
    assert n_sessions == len(sessions)


def test_exported_messages_evaluate_from_outside_and_bad_input_is_named(
    run_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "m.jsonl"
    CliRunner().invoke(app, ["export", str(run_dir), "-f", "messages", "-o", str(target)])
    out = tmp_path / "eval"
    args = ["transcripts", "evaluate", str(target), "-f", "messages", "--judge", "scripted"]
    result = CliRunner().invoke(app, [*args, "-r", "empathy_insight", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "empathy_insight" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["conversations"] == 4
    bad = CliRunner().invoke(app, ["export", str(run_dir), "-f", "srt"])
    assert bad.exit_code == 1 and "unknown export format" in bad.output
    empty = CliRunner().invoke(app, ["export", str(tmp_path), "-f", "messages"])
    assert empty.exit_code == 1 and "no sessions.jsonl" in empty.output
    wrong = CliRunner().invoke(app, ["transcripts", "evaluate", str(target), "-f", "annomi"])
    assert wrong.exit_code == 1 and "missing columns" in wrong.output
