"""`langgraph dev` loads langgraph.json and serves a counseling session to the SDK client."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import REPO, free_port, wait_http

from theramind import TheraMind
from theramind.testing.stub_server import StubConfig, StubServer

pytestmark = pytest.mark.integration


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(StubConfig(seed=2)) as server:
        yield server


def _langgraph() -> str:
    found = shutil.which("langgraph") or str(Path(sys.executable).parent / "langgraph")
    if not Path(found).exists():
        pytest.fail("langgraph-cli is not installed: pip install 'theramind[integration]'")
    return found


def test_langgraph_dev_drives_one_session(
    tmp_path: Path, stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langgraph_sdk import get_sync_client

    env = {
        "THERAMIND_BASE_URL": stub.base_url,
        "THERAMIND_MODEL": "stub",
        "THERAMIND_HOME": str(tmp_path / "home"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    app = TheraMind.from_config(use_memory=False)
    session = app.start_session(
        "lg-1", profile={"patient_id": "lg-1", "pseudonym": "Robin", "category": "stress"}
    )
    app.close()

    port = free_port()
    log = (tmp_path / "langgraph.log").open("w")
    proc = subprocess.Popen(
        [
            _langgraph(),
            "dev",
            "--no-browser",
            "--no-reload",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ok", 120, alive=lambda: proc.poll() is None)
        client = get_sync_client(url=f"http://127.0.0.1:{port}")
        context = {"patient_id": "lg-1", "session_no": session.session_no}
        thread = client.threads.create()
        replies = []
        for text in ["Work has been relentless lately.", "I think that's all for today, bye."]:
            out = client.runs.wait(
                thread["thread_id"], "session", input={"message": text}, context=context
            )
            assert isinstance(out, dict) and "last" in out, out
            replies.append(out["last"])
        assert [r["turn"] for r in replies] == [1, 2]
        assert all(r["reply"].strip() for r in replies)
        close_thread = client.threads.create()
        closed = client.runs.wait(close_thread["thread_id"], "course", input={}, context=context)
        assert isinstance(closed, dict) and closed["outcome"]["session_no"] == 1

        # A new patient is started from the client: the profile rides on the first turn.
        newcomer = {
            "patient_id": "lg-2",
            "session_no": 1,
            "profile": {"patient_id": "lg-2", "pseudonym": "Sam", "category": "stress"},
        }
        fresh = client.threads.create()
        first = client.runs.wait(
            fresh["thread_id"], "session", input={"message": "Hi, I'm new."}, context=newcomer
        )
        assert isinstance(first, dict) and first["last"]["turn"] == 1, first
        # Without one, the client is told what to send (not "An internal error occurred").
        lost = client.threads.create()
        refused = client.runs.wait(
            lost["thread_id"],
            "session",
            input={"message": "Hello?"},
            context={"patient_id": "lg-3", "session_no": 1},
            raise_error=False,
        )
        assert "send their profile with the first turn" in str(refused), refused
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()

    check = TheraMind.from_config(use_memory=False)
    try:
        assert [t.turn for t in check.services.store.turns("lg-1", 1)] == [1, 2]
        assert check.services.store.session_status("lg-1", 1) == "closed"
        assert check.history("lg-1")[0].decision.therapies
        assert check.patient("lg-2").pseudonym == "Sam"
        assert [t.turn for t in check.services.store.turns("lg-2", 1)] == [1]
        assert not check.services.store.has_patient("lg-3")
        calls = [r for r in stub.requests if r.structured]
        assert calls, "the served graph made no structured model call"
    finally:
        check.close()
