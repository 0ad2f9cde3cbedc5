"""`theramind show`: what a run holds, and transcripts with each turn's decisions, read back
from a small scripted run (and from a copy of it cut short)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scripted import Counselor
from theramind.cli import app
from theramind.llm import BaseBackend, Request, ScriptedBackend
from theramind.simulation import ExperimentConfig, ExperimentRunner
from theramind.simulation.records import SessionLog, TrackKey, TurnLog, read_jsonl

runner = CliRunner(env={"COLUMNS": "100"})
PATIENTS = ["stress-hana", "anxiety-priya"]
COUNSELORS = ["theramind", "fixed_therapy", "plain"]


@dataclass
class Unplanned(Counselor):
    """Finds every session ineffective (so the counselor proposes a switch) and answers the
    strategist with an id that does not exist (so each turn's plan falls back)."""

    verdict: str = "not_effective"

    def __call__(self, request: Request) -> Any:
        if request.schema_name == "StrategyChoice":
            return {"strategy": "no_such_strategy", "rationale": "", "focus": ""}
        return super().__call__(request)


def backends(key: TrackKey) -> Mapping[str, BaseBackend]:
    return {"counselor": ScriptedBackend(handler=Unplanned())}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("show") / "run"
    config = ExperimentConfig.model_validate(
        {
            "name": "show",
            "counselors": COUNSELORS,
            "patients": PATIENTS,
            "sessions": 2,
            "models": {"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
            "patient": {"kind": "scripted"},
            "memory": {"backend": "inmemory", "embedding_model": "hashing"},
            "output_dir": str(out),
        }
    )
    summary = ExperimentRunner(config, backends=backends).run()
    assert summary.tracks_failed == 0 and summary.sessions_run == 12
    return out


def show(*args: str) -> Any:
    return runner.invoke(app, ["show", *args])


def test_the_overview_lists_every_track_and_its_sessions(run_dir: Path) -> None:
    result = show(str(run_dir))
    assert result.exit_code == 0, result.output
    assert "12/12 sessions complete" in result.output and "incomplete" not in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 100
    for name in [*COUNSELORS, *PATIENTS]:
        assert name in result.output
    rows = [line for line in result.output.splitlines() if line.strip().startswith(tuple(PATIENTS))]
    assert len(rows) == 2 and all(row.split()[1:] == ["2/2"] * 3 for row in rows)


def test_an_interrupted_run_reads_as_incomplete(run_dir: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut"
    shutil.copytree(run_dir, cut)
    lines = (cut / "sessions.jsonl").read_text().splitlines()
    dropped = SessionLog.model_validate_json(lines[-1])
    (cut / "sessions.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    turns = [
        t
        for t in read_jsonl(cut / "turns.jsonl", TurnLog)
        if (t.counselor, t.patient_id, t.session_no)
        == (dropped.counselor, dropped.patient_id, dropped.session_no)
    ]
    result = show(str(cut))
    assert result.exit_code == 0, result.output
    assert "11/12 sessions complete (incomplete" in flat(result.output)
    row = next(
        line for line in result.output.splitlines() if line.strip().startswith(dropped.patient_id)
    )
    assert f"1/2 +{len(turns)} turns" in row
    one = show(str(cut), "-p", dropped.patient_id, "-s", "2", "-c", dropped.counselor)
    assert one.exit_code == 0, one.output
    assert f"Incomplete: {len(turns)} turn(s) recorded" in flat(one.output)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_transcript_shows_each_turn_with_what_the_counselor_decided(run_dir: Path) -> None:
    patient = PATIENTS[0]
    result = show(str(run_dir), "--patient", patient, "--session", "1", "--counselor", "theramind")
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    turns = [
        t
        for t in read_jsonl(run_dir / "turns.jsonl", TurnLog)
        if (t.counselor, t.patient_id, t.session_no) == ("theramind", patient, 1)
    ]
    assert turns and "fixed_therapy" not in out and "session 2/2" not in out
    for t in turns:
        r, p = t.response, t.response.perception
        assert p is not None and r.fallbacks  # the strategist always failed: a marked fallback
        assert flat(t.patient.text) in out and flat(r.reply) in out
        details = (
            f"perceived {p.emotion} {p.intensity:.2f}, {p.attitude}",
            f"strategy {r.strategy}",
            f"therapy {' + '.join(r.therapies)} ({r.phase})",
            f"risk {r.risk_level}",
            f"fallbacks: {', '.join(r.fallbacks)}",
        )
        for detail in details:
            assert detail in out, detail
    session = next(
        s
        for s in read_jsonl(run_dir / "sessions.jsonl", SessionLog)
        if (s.counselor, s.patient_id, s.session_no) == ("theramind", patient, 1)
    )
    assert session.decision is not None
    assert f"Decision at close: switch → {' + '.join(session.decision.applied.therapies)}" in out


def test_a_proposal_the_ablation_did_not_apply_is_shown_as_such(run_dir: Path) -> None:
    result = show(str(run_dir), "-p", PATIENTS[1], "-c", "fixed_therapy")
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "session 1/2" in out and "session 2/2" in out
    assert out.count("proposed switch → ") == 2 and out.count("(overridden)") == 2
    plain = flat(show(str(run_dir), "-p", PATIENTS[1], "-c", "plain").output)
    assert "no perception" in plain and "Decision at close" not in plain


def test_bad_requests_are_clear_errors(run_dir: Path, tmp_path: Path) -> None:
    unknown = show(str(run_dir), "-p", "nobody")
    assert unknown.exit_code == 1 and "no patient 'nobody'" in unknown.output
    assert all(p in unknown.output for p in PATIENTS)
    who = show(str(run_dir), "-p", PATIENTS[0], "-c", "nobody")
    assert who.exit_code == 1 and "no counselor 'nobody'" in who.output
    late = show(str(run_dir), "-p", PATIENTS[0], "-s", "9", "-c", "theramind")
    assert late.exit_code == 1 and "recorded: 1, 2" in late.output
    alone = show(str(run_dir), "-s", "1")
    assert alone.exit_code == 1 and "--session needs --patient" in alone.output
    empty = show(str(tmp_path))
    assert empty.exit_code == 1 and "run `theramind simulate` first" in empty.output
