"""Many workers, one truth: two worker processes on one Postgres and one chroma server.

Two workers serve eight patients each, at once. One is SIGKILLed mid-turn and started again;
while the other runs, a third process tries to write one of its sessions. Afterwards every
acknowledged turn is stored exactly once, each patient's memory holds only their own words,
and the intruder got a typed `SessionBusyError` without touching the record.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from servers import chroma_server

from theramind import SessionBusyError, TheraMind, load_config
from theramind.config import MemorySettings
from theramind.memory import HashingEmbedder
from theramind.memory.store import COLLECTION_PREFIX, ChromaIndex, collection_name
from theramind.services import build_services

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

WORKER = Path(__file__).with_name("shared_worker.py")
TURNS = 3
DELAY_S = 0.03


class Worker:
    """One worker process and the lines it printed (read on a thread as they come)."""

    def __init__(self, config: dict, patients: list[str], log: Path) -> None:
        self._log: IO[str] = log.open("a")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                json.dumps(config),
                ",".join(patients),
                str(TURNS),
                str(DELAY_S),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    def acks(self) -> list[tuple[str, int, str]]:
        return [tuple(line["ack"]) for line in list(self.lines) if "ack" in line]  # type: ignore[misc]

    def wait_for(self, test: str, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while sum(test in line for line in list(self.lines)) < count:
            if self.proc.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"worker ended early ({self.proc.returncode}): see the log")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker printed fewer than {count} {test!r} lines in time")
            time.sleep(0.02)

    def finish(self, timeout_s: float) -> None:
        assert self.proc.wait(timeout=timeout_s) == 0, "worker failed: see its log"
        self._reader.join(timeout=10)
        self._log.close()


def test_two_workers_one_killed_lose_and_duplicate_no_turn(
    tmp_path: Path, postgres_url: str
) -> None:
    with chroma_server(tmp_path / "chroma") as port:
        memory = {"backend": "chroma", "host": "127.0.0.1", "port": port, "database": "workers"}
        storage = {"home": str(tmp_path / "home"), "backend": "postgres", "url": postgres_url}
        config = {"storage": storage, "memory": memory}
        patients = {w: [f"w{w}p{i}" for i in range(8)] for w in ("a", "b")}
        log = tmp_path / "workers.log"
        victim = Worker(config, patients["a"], log)
        other = Worker(config, patients["b"], log)

        # Mid-run the other worker holds all its sessions: a third writer is refused, typed.
        other.wait_for("ack", 1, timeout_s=120)
        intruder = _app(storage)
        try:
            with pytest.raises(SessionBusyError):
                intruder.start_session(patients["b"][3])
        finally:
            intruder.close()

        victim.wait_for("ack", 10, timeout_s=120)
        time.sleep(DELAY_S * 1.5)  # the next turn is in flight
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=30)
        killed_acks = victim.acks()
        assert len(killed_acks) < len(patients["a"]) * TURNS, "killed after the last turn"

        restarted = Worker(config, patients["a"], log)
        restarted.finish(timeout_s=180)
        other.finish(timeout_s=180)

        acks = killed_acks + restarted.acks() + other.acks()
        closed = [
            tuple(line["closed"])
            for w in (restarted, other)
            for line in w.lines
            if "closed" in line
        ]
        assert sorted(closed) == sorted((pid, 1) for ps in patients.values() for pid in ps)
        _check_store(storage, patients, acks)
        _check_memory(memory, tmp_path, patients)


def _app(storage: dict) -> TheraMind:
    settings = load_config(
        None,
        models={"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
        storage=storage,
        memory={"backend": "inmemory"},
    )
    return TheraMind(build_services(settings, use_memory=False))


def _check_store(
    storage: dict, patients: dict[str, list[str]], acks: list[tuple[str, int, str]]
) -> None:
    assert len(acks) == len(set(acks)), "a turn was acknowledged twice"
    app = _app(storage)
    try:
        store = app.services.store
        stored: list[tuple[str, int, str]] = []
        for pid in [p for ps in patients.values() for p in ps]:
            turns = store.turns(pid, 1)
            assert [t.patient_text for t in turns] == [
                f"{pid} says thing {i}" for i in range(TURNS)
            ], pid
            assert [t.turn for t in turns] == list(range(1, TURNS + 1))
            assert store.session_status(pid, 1) == "closed"
            assert [o.session_no for o in store.outcomes(pid)] == [1]
            assert store.lease_owner(pid, 1) is None
            stored += [(pid, t.turn, t.patient_text) for t in turns]
        assert set(acks) <= set(stored), "an acknowledged turn is missing"
        # The killed worker's in-flight turn is the only one stored without an ack.
        assert len(set(stored) - set(acks)) <= 1
    finally:
        app.close()


def _check_memory(memory: dict, tmp_path: Path, patients: dict[str, list[str]]) -> None:
    everyone = [p for ps in patients.values() for p in ps]
    index = ChromaIndex.from_settings(
        MemorySettings(**memory), tmp_path / "unused", HashingEmbedder()
    )
    names = [c.name for c in index._client.list_collections()]
    assert sorted(n for n in names if n.startswith(COLLECTION_PREFIX)) == sorted(
        collection_name(pid) for pid in everyone
    )
    for pid in everyone:
        col = index._collection(pid, create=False)
        assert col is not None, pid
        got = col.get(include=["documents", "metadatas"])
        docs, metas = got["documents"] or [], got["metadatas"] or []
        assert docs, f"no memories for {pid}"
        assert {m["patient_id"] for m in metas} == {pid}
        others = [o for o in everyone if o != pid]
        assert not [d for d in docs if any(o in d for o in others)], pid
        assert any(pid in d for d in docs), pid
