"""The `evaluate` and `report` commands on a small scripted run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from theramind.cli import app

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    config = root / "exp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "eval-cli",
                "counselors": ["theramind", "plain"],
                "patients": ["anxiety-priya", "stress-hana"],
                "sessions": 2,
                "models": {"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
                "memory": {"backend": "inmemory", "embedding_model": "hashing"},
                "output_dir": str(root / "run"),
            }
        )
    )
    result = runner.invoke(app, ["simulate", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    return root / "run"


def test_evaluate_prints_a_summary_and_resumes(run_dir: Path) -> None:
    args = ["evaluate", str(run_dir), "-r", "therapeutic_alliance", "-r", "coherence", "--quiet"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "judged (0 missing)" in first.output and "Therapeutic Alliance" in first.output
    assert "ΔPHQ-9 (latent)" in first.output and "judge scripted:scripted" in first.output
    lines = (run_dir / "eval" / "scores.jsonl").read_text().splitlines()
    assert sum(json.loads(x)["source"] == "judge" for x in lines) == 2 * 2 * 2 + 2 * 2
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "0 judged" in again.output and "12 kept" in again.output
    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    assert {row["counselor"] for row in summary} == {"theramind", "plain"}


def test_report_writes_markdown_and_figures(run_dir: Path) -> None:
    result = runner.invoke(app, ["report", str(run_dir), "--baseline", "plain"])
    assert result.exit_code == 0, result.output
    text = (run_dir / "report" / "report.md").read_text()
    assert "### plain vs theramind" in text
    for name in ("radar.png", "trajectories.png", "timeline_anxiety-priya.png"):
        assert (run_dir / "report" / "figures" / name).stat().st_size > 10_000


def test_unknown_rubric_and_missing_run_are_clear_errors(run_dir: Path, tmp_path: Path) -> None:
    bad = runner.invoke(app, ["evaluate", str(run_dir), "-r", "nope", "--quiet"])
    assert bad.exit_code == 1 and "unknown rubric ids" in bad.output
    empty = runner.invoke(app, ["report", str(tmp_path)])
    assert empty.exit_code == 1 and "no sessions.jsonl records" in empty.output
