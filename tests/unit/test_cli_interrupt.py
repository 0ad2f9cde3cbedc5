"""Ctrl-C: `simulate` and `chat` exit 130 with a clear message, and a rerun resumes the run.

The child gets a real SIGINT, as from a terminal; scripted models, no embedded model.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from cli_proc import SCRIPTED, Output, cli_env, experiment, spawn, theramind


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _wait_sessions(run: Path, proc: Output, at_least: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    path = run / "sessions.jsonl"
    while time.monotonic() < deadline and proc.proc.poll() is None:
        if path.is_file() and len(path.read_text().splitlines()) >= at_least:
            return len(path.read_text().splitlines())
        time.sleep(0.05)
    raise AssertionError(f"no {at_least} sessions before the run ended:\n{proc.text}")


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_in_simulate_exits_130_and_a_rerun_completes_every_session_once(
    tmp_path: Path, presses: int
) -> None:
    run = tmp_path / "run"
    config = experiment(
        tmp_path,
        counselors=["theramind", "plain"],
        patients=["anxiety-priya", "addiction-sam"],
        sessions=12,
        round_cap=6,
        models=SCRIPTED,
    )
    env = cli_env(tmp_path)
    proc = Output(spawn(["simulate", str(config), "-o", str(run)], env, cwd=tmp_path))
    _wait_sessions(run, proc, at_least=3)
    for _ in range(presses):  # a second Ctrl-C while the calls in flight finish
        proc.proc.send_signal(signal.SIGINT)
        time.sleep(0.1)
    out = proc.finish()
    assert proc.proc.returncode == 130, out
    assert "interrupted; rerun to resume" in out
    assert "Traceback" not in out and "Aborted" not in out and "Segmentation" not in out
    done = len(_lines(run / "sessions.jsonl"))
    assert 3 <= done < 48, out
    status = json.loads((run / "run.json").read_text())["status"]
    assert status["complete"] is False and status["sessions_total"] == 48
    assert _lines(run / "events.jsonl")[-1]["kind"] == "interrupt"

    report = theramind(["report", str(run)], env, cwd=tmp_path)
    assert report.returncode == 0, report.stdout
    assert (
        f"INCOMPLETE: {status['sessions_done']}/48 sessions"
        in (run / "report" / "report.md").read_text()
    )
    assert "INCOMPLETE" in report.stdout

    again = theramind(["simulate", str(config), "-o", str(run), "--quiet"], env, cwd=tmp_path)
    assert again.returncode == 0, again.stdout
    assert "kept from before" in again.stdout and "48/48 sessions, complete" in again.stdout
    sessions = _lines(run / "sessions.jsonl")
    keys = Counter((s["counselor"], s["patient_id"], s["session_no"]) for s in sessions)
    assert len(keys) == 48 and set(keys.values()) == {1}
    turns = _lines(run / "turns.jsonl")
    rounds = Counter((t["counselor"], t["patient_id"], t["session_no"], t["round"]) for t in turns)
    assert set(rounds.values()) == {1}
    assert len(turns) == sum(s["rounds"] for s in sessions)


def test_ctrl_c_in_chat_exits_130_and_says_so(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    root = Path(__file__).resolve().parents[2]
    config.write_text(
        json.dumps(
            {
                "models": SCRIPTED,
                "memory": {"backend": "inmemory", "embedding_model": "hashing"},
                "config_dir": str(root / "configs"),
            }
        )
    )
    proc = Output(
        spawn(["chat", "--config", str(config), "-p", "me"], cli_env(tmp_path), cwd=tmp_path)
    )
    assert proc.wait_for("Checking the counselor model", timeout=60), proc.text
    assert proc.wait_for("You>"), proc.text
    assert proc.proc.stdin is not None
    proc.proc.stdin.write("Work has been heavy this month.\n")
    proc.proc.stdin.flush()
    assert proc.wait_for("You>", count=2), proc.text
    proc.proc.send_signal(signal.SIGINT)
    out = proc.finish()
    assert proc.proc.returncode == 130, out
    assert "interrupted; the session stays open" in out
    assert "Traceback" not in out and "Aborted" not in out


def test_closing_a_chat_with_ctrl_d_says_it_is_closing(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    root = Path(__file__).resolve().parents[2]
    config.write_text(
        json.dumps(
            {
                "models": SCRIPTED,
                "memory": {"backend": "inmemory", "embedding_model": "hashing"},
                "config_dir": str(root / "configs"),
            }
        )
    )
    result = theramind(
        ["chat", "--config", str(config), "-p", "me"],
        cli_env(tmp_path),
        cwd=tmp_path,
        stdin="Work has been heavy this month.\n",  # then end of input: Ctrl-D
    )
    assert result.returncode == 0, result.stdout
    out = result.stdout
    assert out.index("Checking the counselor model") < out.index("Counselor:")
    assert out.index("Closing the session") < out.index("Next session:")
