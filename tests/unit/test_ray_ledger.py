"""The Ray engine's bookkeeping, without a cluster: each session taken once, in order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from theramind.cli import app
from theramind.errors import ConfigError
from theramind.simulation import ExperimentConfig, ExperimentRunner
from theramind.simulation.ray_engine import Ledger, _apply, check_run_dir, run_on_ray
from theramind.simulation.records import RunEvent, SessionLog, TurnLog, read_jsonl


def _session(no: int) -> dict[str, Any]:
    return {"session_no": no, "marker": f"attempt-one-{no}"}


def test_the_ledger_takes_each_session_once_and_in_order() -> None:
    ledger = Ledger({"t1": [{"session": _session(1), "turns": []}]})
    attempt, done = ledger.begin("t1", {"pid": 1})
    assert attempt == 1 and [d["session"]["session_no"] for d in done] == [1]
    assert ledger.commit("t1", _session(2), [{"round": 1}]) is True
    # A second attempt of the course (its first worker died) resends session 2: dropped.
    attempt, done = ledger.begin("t1", {"pid": 2})
    assert attempt == 2 and len(done) == 2, "the retry resumes after the committed sessions"
    assert ledger.commit("t1", {"session_no": 2, "marker": "again"}, []) is False
    assert ledger.commit("t1", _session(4), []) is False, "no gap may be skipped"
    assert ledger.commit("t1", _session(3), []) is True
    out = ledger.drain()
    assert [(kind, data.get("session", {}).get("session_no")) for kind, _, data in out] == [
        ("session", 2),
        ("retry", None),
        ("session", 3),
    ]
    assert out[1][2] == {"pid": 2, "attempt": 2, "done": 2}
    assert out[0][2]["turns"] == [{"round": 1}]
    assert ledger.drain() == [], "a drain hands each item over once"


def test_the_ledger_keeps_courses_apart() -> None:
    ledger = Ledger({})
    assert ledger.commit("a", _session(1), []) and ledger.commit("b", _session(1), [])
    assert not ledger.commit("a", _session(1), [])
    ledger.note("b", 2, 40)
    kinds = [(kind, slug) for kind, slug, _ in ledger.drain()]
    assert kinds == [("session", "a"), ("session", "b"), ("round", "b")]


def test_a_node_that_cannot_see_the_run_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="filesystem every node mounts"):
        check_run_dir(tmp_path / "elsewhere", "abc")
    (tmp_path / "run.json").write_text(json.dumps({"fingerprint": "other"}))
    with pytest.raises(ConfigError, match="belongs to another run"):
        check_run_dir(tmp_path, "abc")
    (tmp_path / "run.json").write_text(json.dumps({"fingerprint": "abc"}))
    check_run_dir(tmp_path, "abc")


def test_backends_passed_in_code_are_refused_on_ray(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    exp = ExperimentConfig.model_validate(
        {
            "name": "t",
            "counselors": ["plain"],
            "patients": ["anxiety-priya"],
            "sessions": 1,
            "models": {"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
            "output_dir": str(tmp_path / "run"),
        }
    )
    runner = ExperimentRunner(exp, backends={}, engine="ray")
    with pytest.raises(ConfigError, match="cannot travel to Ray workers"):
        run_on_ray(runner)
    assert not (tmp_path / "run").exists(), "nothing written before the refusal"


def test_address_without_the_ray_engine_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["simulate", str(tmp_path / "x.yaml"), "--address", "127.0.0.1:6379"]
    )
    assert result.exit_code == 1
    assert "--address is for --engine ray" in result.output


def test_worker_processes_are_for_the_local_engine(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["simulate", str(tmp_path / "x.yaml"), "--engine", "ray", "--workers", "2"]
    )
    assert result.exit_code == 1
    assert "--workers is for the local engine" in result.output


def _scripted(out: Path) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "t",
            "counselors": ["plain"],
            "patients": ["anxiety-priya"],
            "sessions": 1,
            "models": {"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
            "memory": {"backend": "inmemory", "embedding_model": "hashing"},
            "output_dir": str(out),
        }
    )


def test_the_driver_writes_what_the_ledger_took_once_with_its_rounds(tmp_path: Path) -> None:
    local = ExperimentRunner(_scripted(tmp_path / "local"))
    local.run()
    session = read_jsonl(tmp_path / "local" / "sessions.jsonl", SessionLog)[0]
    turns = read_jsonl(tmp_path / "local" / "turns.jsonl", TurnLog)
    assert turns, "the scripted session has rounds"

    notes: list[str] = []
    driver = ExperimentRunner(
        _scripted(tmp_path / "ray"), on_progress=lambda n: notes.append(n.kind)
    )
    driver.begin()
    key = driver.tracks()[0][0]
    ledger = Ledger({})
    ledger.note(key.slug, 1, 12)
    ledger.begin(key.slug, {"pid": 1})
    ledger.begin(key.slug, {"pid": 2})  # the first attempt's worker died
    entry = session.model_dump(mode="json")
    assert ledger.commit(key.slug, entry, [t.model_dump(mode="json") for t in turns])
    assert not ledger.commit(key.slug, entry, [])
    _apply(driver, {key.slug: key}, ledger.drain())

    out = tmp_path / "ray"
    assert len(read_jsonl(out / "sessions.jsonl", SessionLog)) == 1
    assert len(read_jsonl(out / "turns.jsonl", TurnLog)) == len(turns)
    retries = [e for e in read_jsonl(out / "events.jsonl", RunEvent) if e.kind == "retry"]
    assert len(retries) == 1 and retries[0].session_no == 1 and retries[0].detail["attempt"] == 2
    assert driver.summary.sessions_run == 1 and driver.summary.turns_run == len(turns)
    assert notes.count("round") == 1, "rounds are shown once, when they happen"
    assert notes.count("session") == 1
