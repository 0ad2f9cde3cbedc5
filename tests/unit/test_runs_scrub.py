"""`theramind runs scrub RUN --patient P` removes a patient from a run, file by file atomically."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from theramind.cli import app
from theramind.simulation import scrub as scrub_module
from theramind.simulation.scrub import scrub_run

runner = CliRunner()
GONE, KEPT = "anxiety-priya", "anxiety-mei"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-patient run (scripted models), copied fresh for each test."""
    base = tmp_path_factory.mktemp("scrub")
    config = base / "exp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "scrub-smoke",
                "counselors": ["theramind"],
                "patients": [GONE, KEPT],
                "sessions": 2,
                "models": {"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
                "memory": {"backend": "inmemory", "embedding_model": "hashing"},
                "output_dir": str(base / "run"),
            }
        )
    )
    result = runner.invoke(app, ["simulate", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    return base / "run"


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "run"
    shutil.copytree(run_dir, target)
    return target


def _named(root: Path, pid: str) -> list[str]:
    token = re.compile(rf"(?<![A-Za-z0-9_.:-]){re.escape(pid)}(?![A-Za-z0-9_.:-])")
    found = []
    for path in root.rglob("*"):
        if (path.is_file() and token.search(path.read_bytes().decode("utf-8", "replace"))) or (
            path.is_dir() and path.name == pid
        ):
            found.append(str(path.relative_to(root)))
    return found


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_scrub_removes_every_record_of_the_patient(run_dir: Path, tmp_path: Path) -> None:
    run = _copy(run_dir, tmp_path)
    assert _named(run, GONE)  # the check can see the patient before the scrub
    kept_before = {
        name: [r for r in _lines(run / name) if r.get("patient_id") == KEPT]
        for name in ("turns.jsonl", "sessions.jsonl")
    }
    result = runner.invoke(app, ["runs", "scrub", str(run), "--patient", GONE])
    assert result.exit_code == 0, result.output
    assert "removed" in result.output
    assert _named(run, GONE) == []
    for name, records in kept_before.items():
        assert _lines(run / name) == records and records  # the other patient is untouched
    header = json.loads((run / "run.json").read_text())
    assert header["patients"] == [KEPT]
    assert not list(run.rglob("*.scrub-tmp"))
    again = scrub_run(run, GONE)  # nothing left to remove
    assert again.removed == 0 and again.homes == []


def test_a_failed_rewrite_leaves_the_file_whole(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _copy(run_dir, tmp_path)
    before = (run / "turns.jsonl").read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(scrub_module.os, "replace", crash)
    with pytest.raises(OSError):
        scrub_run(run, GONE)
    assert (run / "turns.jsonl").read_bytes() == before


def test_scrub_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["runs", "scrub", str(tmp_path), "--patient", GONE])
    assert result.exit_code == 1 and "not a run directory" in result.output
