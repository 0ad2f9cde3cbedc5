"""Fail fast, never fake: a dead server stops every command, fallbacks make a run invalid.

Each test runs `theramind` in a subprocess, as a user does, on scripted models or a local stub
server; nothing loads the embedded model.
"""

from __future__ import annotations

import json
from pathlib import Path

from cli_proc import DEAD, SCRIPTED, cli_env, experiment, theramind

from theramind.testing.stub_server import StubConfig, StubServer

REFUSED = f"Cannot reach the model server at {DEAD}"


def test_simulate_stops_on_a_dead_server_and_writes_nothing(tmp_path: Path) -> None:
    config = experiment(tmp_path)  # no `models:`, so the environment chooses the server
    run = tmp_path / "run"
    env = cli_env(tmp_path, THERAMIND_BASE_URL=DEAD)
    result = theramind(["simulate", str(config), "-o", str(run), "--quiet"], env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert REFUSED in result.stdout and "THERAMIND_BASE_URL" in result.stdout
    assert "Run summary" not in result.stdout and "sessions run" not in result.stdout
    assert not run.exists()


def test_a_dead_server_keeps_an_earlier_run_even_with_fresh(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ok = theramind(
        ["simulate", str(experiment(tmp_path, models=SCRIPTED)), "-o", str(run), "--quiet"],
        cli_env(tmp_path),
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stdout
    before = (run / "sessions.jsonl").read_text()
    dead = experiment(tmp_path, name="exp", models={})  # same run dir, server from the env
    result = theramind(
        ["simulate", str(dead), "-o", str(run), "--quiet", "--fresh"],
        cli_env(tmp_path, THERAMIND_BASE_URL=DEAD),
        cwd=tmp_path,
    )
    assert result.returncode == 1 and REFUSED in result.stdout
    assert (run / "sessions.jsonl").read_text() == before


def test_chat_stops_on_a_dead_server_before_any_reply(tmp_path: Path) -> None:
    env = cli_env(tmp_path, THERAMIND_BASE_URL=DEAD)
    result = theramind(
        ["chat", "-p", "me"], env, cwd=tmp_path, stdin="I have been feeling low.\n/end\n"
    )
    assert result.returncode == 1, result.stdout
    assert REFUSED in result.stdout
    assert "Counselor:" not in result.stdout and "Next session" not in result.stdout
    assert not (tmp_path / "home" / "theramind.sqlite").exists()


def test_demo_and_evaluate_stop_on_a_dead_server(tmp_path: Path) -> None:
    env = cli_env(tmp_path, THERAMIND_BASE_URL=DEAD)
    demo = theramind(["demo", "-o", str(tmp_path / "demo")], env, cwd=tmp_path)
    assert demo.returncode == 1, demo.stdout
    assert f"model server at {DEAD}" in demo.stdout and REFUSED in demo.stdout
    assert not (tmp_path / "demo").exists()
    run = tmp_path / "run"
    config = experiment(tmp_path, models=SCRIPTED)
    made = theramind(
        ["simulate", str(config), "-o", str(run), "--quiet"], cli_env(tmp_path), cwd=tmp_path
    )
    assert made.returncode == 0, made.stdout
    framework = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"
    judged = theramind(
        ["evaluate", str(run), "--config", str(framework), "--quiet"], env, cwd=tmp_path
    )
    assert judged.returncode == 1, judged.stdout
    assert REFUSED in judged.stdout and not (run / "eval").exists()


def test_a_run_built_from_fallbacks_is_invalid_and_exits_3(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with StubServer(StubConfig(fault_rate=1.0, faults=("empty",))) as stub:
        counselor = {
            "backend": "openai",
            "base_url": stub.base_url,
            "model": "stub",
            "retries": 0,
            "backoff_s": 0,
        }
        config = experiment(
            tmp_path,
            counselors=["theramind", "plain"],
            models={**SCRIPTED, "counselor": counselor},
            limits={"structured_retries": 0},
        )
        result = theramind(
            ["simulate", str(config), "-o", str(run), "--quiet"], cli_env(tmp_path), cwd=tmp_path
        )
    assert result.returncode == 3, result.stdout
    assert "INVALID" in result.stdout and "counselor calls fell back (100% > 10%)" in result.stdout
    status = json.loads((run / "run.json").read_text())["status"]
    assert status["valid"] is False and status["complete"] is True
    assert status["fallback_rates"]["theramind"]["counselor"] == 1.0
    assert status["degraded_turns"]["theramind"] == 3
    report = theramind(["report", str(run)], cli_env(tmp_path), cwd=tmp_path)
    assert report.returncode == 0, report.stdout
    text = (run / "report" / "report.md").read_text()
    assert "## Run validity" in text and "**INVALID" in text
    assert "| theramind | 3 | 3 | 100.0% (13/13) |" in text
    assert "| plain | 3 | 3 | 100.0% (3/3) |" in text  # an empty answer is no reply either


def test_a_healthy_scripted_run_is_valid_and_exits_0(tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = experiment(tmp_path, counselors=["theramind", "plain"], sessions=2, models=SCRIPTED)
    result = theramind(
        ["simulate", str(config), "-o", str(run), "--quiet"], cli_env(tmp_path), cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout
    assert "4/4 sessions, complete, valid" in result.stdout
    status = json.loads((run / "run.json").read_text())["status"]
    assert status["valid"] is True and status["sessions_done"] == status["sessions_total"] == 4
    assert status["fallback_rates"]["plain"]["counselor"] == 0.0


def test_explicit_experiment_models_win_over_the_environment(tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = experiment(tmp_path, models=SCRIPTED)
    env = cli_env(tmp_path, THERAMIND_BASE_URL=DEAD, THERAMIND_MODEL="some-served-model")
    result = theramind(["simulate", str(config), "-o", str(run), "--quiet"], env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    header = json.loads((run / "run.json").read_text())
    assert {s["backend"] for s in header["settings"]["models"].values()} == {"scripted"}
    sessions = [json.loads(x) for x in (run / "sessions.jsonl").read_text().splitlines()]
    assert sessions and all(s["model_ids"]["counselor"] == "scripted:scripted" for s in sessions)
