"""One writer per session: a second handle or process is refused, and no reply goes unstored."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import AppFactory
from scripted import Counselor
from theramind import SessionBusyError, TheraMind, load_config
from theramind.llm import Request, ScriptedBackend
from theramind.services import build_services

# Each test runs on a SQLite file and on a throwaway PostgreSQL database (see conftest).
pytestmark = pytest.mark.parametrize("storage_backend", ["sqlite", "postgres"], indirect=True)

WORKER = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {tests!r})
    from scripted import Counselor
    from theramind import SessionBusyError, TheraMind, load_config
    from theramind.llm import ScriptedBackend
    from theramind.memory import HashingEmbedder, build_memory
    from theramind.services import build_services

    storage, name = json.loads(sys.argv[1]), sys.argv[2]
    wait, close = float(sys.argv[3]), sys.argv[4] == "1"
    settings = load_config(None, models={{"counselor": "scripted", "patient": "scripted",
        "judge": "scripted"}}, storage=storage, memory={{"backend": "inmemory"}},
        limits={{"max_rounds": 50}})
    app = TheraMind(build_services(settings, backends={{"counselor": ScriptedBackend(
        handler=Counselor())}}, memory=build_memory(settings, embedder=HashingEmbedder())))
    try:
        session = app.start_session("shared", profile={{"patient_id": "shared"}}, wait=wait)
        for i in range(8):
            text = f"{{name}} says thing {{i}}"
            result = session.respond(text)
            print(json.dumps({{"ack": result.record.turn, "session": session.session_no,
                "text": text}}), flush=True)
        if close:
            session.end()
    except SessionBusyError as exc:
        print(json.dumps({{"busy": str(exc)}}), flush=True)
    app.close()
    """
)


def _run_pair(storage: dict[str, str], *, wait: float, close: bool) -> list[dict]:
    script = Path(storage["home"]).parent / "writer.py"
    script.write_text(WORKER.format(tests=str(Path(__file__).resolve().parents[1])))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                json.dumps(storage),
                name,
                str(wait),
                "1" if close else "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        for name in ("left", "right")
    ]
    lines: list[dict] = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        lines += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return lines


def _stored(storage: dict[str, str]) -> list[tuple[int, int, str]]:
    settings = load_config(
        None,
        models={"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
        storage=storage,
        memory={"backend": "inmemory"},
    )
    app = TheraMind(build_services(settings, use_memory=False))
    try:
        store = app.services.store
        return [
            (no, t.turn, t.patient_text)
            for no in range(1, store.last_session_no("shared") + 1)
            for t in store.turns("shared", no)
        ]
    finally:
        app.close()


def test_two_processes_on_one_session_lose_no_acknowledged_turn(storage: dict[str, str]) -> None:
    lines = _run_pair(storage, wait=0.0, close=False)
    acks = [(a["session"], a["ack"], a["text"]) for a in lines if "ack" in a]
    stored = _stored(storage)
    assert sorted(acks) == sorted(stored), "a reply was returned for a turn that was not stored"
    assert len({(s, n) for s, n, _ in stored}) == len(stored)
    # Both started at once: one writes its eight turns, the other is refused (or came after).
    assert len(acks) == 8 + 8 * (not any("busy" in a for a in lines))


def test_a_waiting_second_process_writes_after_the_first_closes(storage: dict[str, str]) -> None:
    lines = _run_pair(storage, wait=120.0, close=True)
    assert not [a for a in lines if "busy" in a]
    acks = sorted((a["session"], a["ack"], a["text"]) for a in lines if "ack" in a)
    assert len(acks) == 16
    assert acks == sorted(_stored(storage))
    assert {s for s, _, _ in acks} == {1, 2}  # one session each, one after the other


def test_a_second_handle_in_one_process_is_refused(make_app: AppFactory, profile: dict) -> None:
    app = make_app()
    first = app.start_session("p1", profile=profile)
    with pytest.raises(SessionBusyError, match="another writer"):
        app.start_session("p1")
    other = make_app()  # another app over the same home is another writer too
    with pytest.raises(SessionBusyError):
        other.start_session("p1")
    reader = app.session("p1", 1)  # a handle made without start_session may read...
    with pytest.raises(SessionBusyError):
        reader.respond("I am the second writer.")  # ...but not write while `first` does
    assert [first.respond(f"turn {i}").record.turn for i in range(3)] == [1, 2, 3]
    assert [t.patient_text for t in reader.turns] == ["turn 0", "turn 1", "turn 2"]


def test_a_released_or_dropped_handle_frees_the_session(
    make_app: AppFactory, profile: dict
) -> None:
    app = make_app()
    first = app.start_session("p1", profile=profile)
    first.respond("one")
    first.release()
    second = app.start_session("p1")
    assert second.resumed and second.respond("two").record.turn == 2
    with pytest.raises(SessionBusyError):
        first.respond("three")  # the released handle may not write over the new holder
    del second
    gc.collect()
    third = app.start_session("p1")
    assert third.respond("three").record.turn == 3


def test_wait_takes_the_session_once_released(make_app: AppFactory, profile: dict) -> None:
    import threading

    app = make_app()
    first = app.start_session("p1", profile=profile)
    first.respond("one")
    threading.Timer(0.5, first.end).start()
    started = time.monotonic()
    second = app.start_session("p1", wait=20)
    assert time.monotonic() - started >= 0.4
    assert second.session_no == 2  # the first session closed meanwhile: the next one began
    with pytest.raises(SessionBusyError):
        app.start_session("p1", wait=0.3)


def test_a_turn_whose_lease_was_lost_returns_no_reply(make_app: AppFactory, profile: dict) -> None:
    counselor = Counselor()
    steal = {"on": False}
    holder: dict[str, TheraMind] = {}

    def handler(request: Request) -> object:
        if steal["on"] and request.json_schema is None:  # the reply is being written
            store = holder["app"].services.store
            store.acquire_lease("p1", 1, "elsewhere:1:x", stale=lambda owner: True)
        return counselor(request)

    app = make_app(ScriptedBackend(handler=handler))
    holder["app"] = app
    session = app.start_session("p1", profile=profile)
    session.respond("one")
    steal["on"] = True
    with pytest.raises(SessionBusyError):
        session.respond("two")
    assert [t.patient_text for t in session.turns] == ["one"]


def test_the_store_refuses_a_duplicate_turn_loudly(make_app: AppFactory, profile: dict) -> None:
    app = make_app()
    session = app.start_session("p1", profile=profile)
    record = session.respond("one").record
    session.release()
    store = app.services.store
    with pytest.raises(SessionBusyError, match="has 1 turns"):
        store.add_turn(record.model_copy(update={"patient_text": "other"}))
    with pytest.raises(SessionBusyError):
        store.add_turn(record.model_copy(update={"turn": 3}))  # no gaps either
    assert [t.patient_text for t in store.turns("p1", 1)] == ["one"]


def test_an_expired_lease_of_another_host_is_taken_over(
    make_app: AppFactory, profile: dict
) -> None:
    app = make_app()
    app.start_session("p1", profile=profile).release()
    store = app.services.store
    store.acquire_lease("p1", 1, "far-host:42:abc", ttl_s=60)
    with pytest.raises(SessionBusyError):
        app.start_session("p1")  # alive as far as this host can tell, and not expired
    store.acquire_lease("p1", 1, "far-host:42:abc", ttl_s=-1)  # its heartbeat stopped
    assert app.start_session("p1").resumed


def test_a_close_whose_lease_was_lost_stores_no_outcome(
    make_app: AppFactory, profile: dict
) -> None:
    counselor = Counselor()
    holder: dict[str, TheraMind] = {}

    def handler(request: Request) -> object:
        if request.schema_name == "SessionSummary":  # the close is nearly done
            holder["app"].services.store.acquire_lease("p1", 1, "elsewhere:1:x", stale=_gone)
        return counselor(request)

    app = make_app(ScriptedBackend(handler=handler))
    holder["app"] = app
    session = app.start_session("p1", profile=profile)
    session.respond("one")
    with pytest.raises(SessionBusyError):
        session.end()
    assert session.status == "closing" and app.history("p1") == []


def _gone(owner: str) -> bool:
    return True
