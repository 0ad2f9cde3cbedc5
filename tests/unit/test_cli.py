"""The command line: simulate (with resume), chat over stdin, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from theramind.cli import app

runner = CliRunner()
SCRIPTED = {"counselor": "scripted", "patient": "scripted", "judge": "scripted"}


def _experiment(tmp_path: Path, **changes: object) -> Path:
    data = {
        "name": "cli-smoke",
        "counselors": ["theramind", "plain"],
        "patients": ["anxiety-priya", "youth-lucas", "youth-noah", "youth-zoe"],
        "sessions": 2,
        "models": SCRIPTED,
        "memory": {"backend": "chroma", "embedding_model": "hashing"},
        "concurrency": 4,
        "output_dir": str(tmp_path / "run"),
        **changes,
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_simulate_runs_prints_a_summary_and_resumes(tmp_path: Path) -> None:
    config = _experiment(tmp_path)
    result = runner.invoke(app, ["simulate", str(config)])
    assert result.exit_code == 0, result.output
    assert "16 sessions run" in result.output
    assert "Run summary" in result.output and "theramind" in result.output
    run = tmp_path / "run"
    sessions = [json.loads(x) for x in (run / "sessions.jsonl").read_text().splitlines()]
    assert len(sessions) == 16
    again = runner.invoke(app, ["simulate", str(config), "--quiet"])
    assert again.exit_code == 0, again.output
    assert "0 sessions run, 16 kept from before" in again.output


def test_simulate_names_the_bad_field(tmp_path: Path) -> None:
    config = _experiment(tmp_path, sessions=0)
    result = runner.invoke(app, ["simulate", str(config)])
    assert result.exit_code == 1
    assert "exp.yaml: sessions" in result.output
    missing = runner.invoke(app, ["simulate", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 1 and "file not found" in missing.output


def test_chat_reads_stdin_and_closes_the_session(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "models": SCRIPTED,
                "storage": {"home": str(tmp_path / "home")},
                "memory": {"backend": "inmemory", "embedding_model": "hashing"},
                "config_dir": str(Path(__file__).resolve().parents[2] / "configs"),
            }
        )
    )
    result = runner.invoke(
        app,
        ["chat", "--config", str(config), "--patient-id", "me", "--profile", "stress-luis"],
        input="I can't sleep, work is crushing me.\n\nIt has been a long week.\n/end\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("Counselor:") >= 2  # the opening and at least one reply
    assert "strategy" in result.output and "therapy" in result.output
    assert "Next session:" in result.output


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("simulate", "demo", "chat"):
        assert command in result.output
