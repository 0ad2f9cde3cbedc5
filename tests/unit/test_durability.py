"""Durability and isolation: SIGKILL mid-turn and mid-close, and two processes sharing storage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from theramind import TheraMind, load_config
from theramind.memory import HashingEmbedder, build_memory
from theramind.services import build_services

# Each test runs on a SQLite file and on a throwaway PostgreSQL database (see conftest).
pytestmark = pytest.mark.parametrize("storage_backend", ["sqlite", "postgres"], indirect=True)

WORKER = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {tests!r})
    from scripted import Counselor
    from theramind import TheraMind, load_config
    from theramind.llm import ScriptedBackend
    from theramind.memory import HashingEmbedder, build_memory
    from theramind.services import build_services

    storage, pid, mode = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    turns, delay = int(sys.argv[4]), float(sys.argv[5])
    settings = load_config(None, models={{"counselor": "scripted", "patient": "scripted",
        "judge": "scripted"}}, storage=storage, memory={{"backend": "inmemory"}})
    counselor = Counselor()
    def slow(request):
        time.sleep(delay)
        return counselor(request)
    services = build_services(settings, backends={{"counselor": ScriptedBackend(handler=slow)}},
        memory=build_memory(settings, embedder=HashingEmbedder()))
    app = TheraMind(services)
    session = app.start_session(pid, profile={{"patient_id": pid, "pseudonym": pid}})
    for i in range(turns):
        text = f"{{pid}} says thing {{i}}"
        result = session.respond(text)
        print(json.dumps({{"ack": result.record.turn, "text": text}}), flush=True)
    if mode == "close":
        print(json.dumps({{"closing": True}}), flush=True)
        session.end()
        print(json.dumps({{"closed": True}}), flush=True)
    """
)


def _spawn(
    storage: dict[str, str], pid: str, mode: str, turns: int, delay: float
) -> subprocess.Popen[str]:
    script = Path(storage["home"]).parent / "worker.py"
    script.write_text(WORKER.format(tests=str(Path(__file__).resolve().parents[1])))
    return subprocess.Popen(
        [sys.executable, str(script), json.dumps(storage), pid, mode, str(turns), str(delay)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _app(storage: dict[str, str]) -> TheraMind:
    settings = load_config(
        None,
        models={"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
        storage=storage,
        memory={"backend": "inmemory"},
    )
    return TheraMind(
        build_services(settings, memory=build_memory(settings, embedder=HashingEmbedder()))
    )


def _read_acks(proc: subprocess.Popen[str], until: int) -> list[dict]:
    acks: list[dict] = []
    assert proc.stdout is not None
    while len(acks) < until:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(proc.stderr.read() if proc.stderr else "worker ended")
        acks.append(json.loads(line))
    return acks


def test_sigkill_mid_session_keeps_every_acknowledged_turn(storage: dict[str, str]) -> None:
    proc = _spawn(storage, "k1", "turns", turns=10, delay=0.15)
    acks = _read_acks(proc, until=3)
    time.sleep(0.2)  # the fourth turn is now in flight
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    app = _app(storage)
    try:
        session = app.start_session("k1")
        stored = [t.patient_text for t in session.turns]
        assert stored[: len(acks)] == [a["text"] for a in acks]
        assert len(stored) in (len(acks), len(acks) + 1)
        nxt = session.respond("after the crash").record
        assert nxt.turn == len(stored) + 1
        assert session.end().session_no == 1
    finally:
        app.close()


def test_sigkill_mid_close_resumes_the_close(storage: dict[str, str]) -> None:
    proc = _spawn(storage, "k2", "close", turns=2, delay=0.3)
    _read_acks(proc, until=3)  # two turns and the start of the close
    time.sleep(0.45)  # efficacy done, decision in flight
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    app = _app(storage)
    try:
        status = app.services.store.session_status("k2", 1)
        assert status in ("open", "closing")
        session = app.start_session("k2")
        assert session.session_no == 1 and len(session.turns) == 2
        outcome = session.end()
        assert outcome.session_no == 1 and session.status == "closed"
        assert app.start_session("k2").session_no == 2
    finally:
        app.close()


def test_two_processes_share_storage_without_mixing_patients(storage: dict[str, str]) -> None:
    procs = [_spawn(storage, pid, "close", turns=4, delay=0.02) for pid in ("alice", "bob")]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    app = _app(storage)
    try:
        for pid in ("alice", "bob"):
            other = "bob" if pid == "alice" else "alice"
            turns = app.services.store.turns(pid, 1)
            assert [t.turn for t in turns] == [1, 2, 3, 4]
            assert all(t.patient_text.startswith(pid) for t in turns)
            assert all(other not in json.dumps(t.model_dump(mode="json")) for t in turns)
            assert app.history(pid)[0].session_no == 1
    finally:
        app.close()
