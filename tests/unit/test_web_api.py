"""The HTTP API over the scripted counselor: every endpoint, streaming, typed errors' statuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from conftest import AppFactory
from scripted import Counselor
from theramind.errors import ConfigError
from theramind.web import ServeOptions, check_bind, create_app

TOKEN = "a-long-random-test-token-0123456789"


@pytest.fixture
def client(make_app: AppFactory, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(make_app(Counselor()), runs_dir=tmp_path / "runs")
    with TestClient(app) as c:
        yield c


def _start(client: TestClient, profile: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/api/patients/{profile['patient_id']}/sessions", json={"profile": profile})
    assert r.status_code == 200, r.text
    return r.json()


def _events(body: str) -> list[tuple[str, Any]]:
    events = []
    for block in body.strip().split("\n\n"):
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


def test_a_session_over_http_start_talk_end(client: TestClient, profile: dict[str, Any]) -> None:
    started = _start(client, profile)
    assert started["session_no"] == 1 and started["opening"] and not started["resumed"]
    assert started["status"] == "open" and started["risk_open"] is False
    assert any("Emergency" in line for line in started["resources"])

    r = client.post("/api/patients/p1/sessions/1/messages", json={"text": "Work has been awful."})
    assert r.status_code == 200, r.text
    turn = r.json()
    assert turn["reply"] and turn["record"]["turn"] == 1
    assert turn["record"]["perception"]["emotion"] and turn["record"]["strategy"]

    r = client.post("/api/patients/p1/sessions/1/end")
    assert r.status_code == 200, r.text
    outcome = r.json()
    assert outcome["session_no"] == 1 and outcome["decision"]["action"]

    view = client.get("/api/patients/p1").json()
    assert [s["session_no"] for s in view["sessions"]] == [1]
    assert view["sessions"][0]["decision"]["reason"]
    assert view["formulation"] is not None and view["open_session"] is None
    session = client.get("/api/patients/p1/sessions/1").json()
    assert session["status"] == "closed" and [t["turn"] for t in session["turns"]] == [1]
    assert client.get("/api/patients").json() == ["p1"]


def test_the_reply_streams_as_server_sent_events(
    client: TestClient, profile: dict[str, Any]
) -> None:
    _start(client, profile)
    r = client.post("/api/patients/p1/sessions/1/stream", json={"text": "I can't sleep at all."})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    tokens = [data for name, data in events if name == "token"]
    final = [data for name, data in events if name == "turn"]
    assert tokens and len(final) == 1
    assert "".join(tokens).strip() == final[0]["reply"].strip()
    assert final[0]["record"]["turn"] == 1
    stored = client.get("/api/patients/p1/sessions/1").json()["turns"]
    assert [t["reply"] for t in stored] == [final[0]["reply"]]


def test_a_crisis_message_opens_the_risk_and_names_resources(
    client: TestClient, profile: dict[str, Any]
) -> None:
    _start(client, profile)
    r = client.post(
        "/api/patients/p1/sessions/1/messages", json={"text": "I want to kill myself tonight."}
    )
    turn = r.json()
    assert turn["record"]["crisis"] is True and turn["risk_open"] is True
    assert turn["record"]["risk_level"] in ("moderate", "high")
    assert turn["resources"] and client.get("/api/patients/p1").json()["risk_open"] is True


def test_typed_errors_map_to_statuses_with_json_bodies(
    client: TestClient, profile: dict[str, Any]
) -> None:
    r = client.post("/api/patients/nobody/sessions", json={})
    assert r.status_code == 404 and r.json()["error"] == "UnknownPatientError"
    assert client.get("/api/patients/nobody").status_code == 404

    _start(client, profile)
    r = client.post("/api/patients/p1/sessions/1/messages", json={"text": "   "})
    assert r.status_code == 422 and r.json()["error"] == "InputError"
    r = client.post("/api/patients/p1/sessions/1/stream", json={"text": ""})
    assert r.status_code == 422 and r.json()["error"] == "InputError"
    r = client.post("/api/patients/p1/sessions/1/messages", json={"wrong": "field"})
    assert r.status_code == 422 and r.json()["error"] == "InputError"
    assert "text" in r.json()["message"]

    r = client.post("/api/patients/p1/sessions/7/messages", json={"text": "hello"})
    assert r.status_code == 409 and r.json()["error"] == "SessionStateError"

    client.post("/api/patients/p1/sessions/1/messages", json={"text": "hello there"})
    client.post("/api/patients/p1/sessions/1/end")
    r = client.post("/api/patients/p1/sessions/1/messages", json={"text": "one more"})
    assert r.status_code == 409

    r = client.post(
        "/api/patients/p2/sessions", json={"profile": {**profile, "patient_id": "someone-else"}}
    )
    assert r.status_code == 422 and r.json()["error"] == "InputError"


def test_export_and_delete_are_scoped_to_one_patient(
    client: TestClient, profile: dict[str, Any]
) -> None:
    _start(client, profile)
    _start(client, {**profile, "patient_id": "p2", "pseudonym": "Sam"})
    client.post("/api/patients/p1/sessions/1/messages", json={"text": "My dog Pip is ill."})
    client.post("/api/patients/p2/sessions/1/messages", json={"text": "My sister visited."})

    exported = client.get("/api/patients/p1/export").json()
    text = json.dumps(exported)
    assert "Pip" in text and "sister" not in text and "Sam" not in text

    assert client.delete("/api/patients/p1").json() == {"deleted": "p1"}
    assert client.get("/api/patients/p1").status_code == 404
    assert client.get("/api/patients").json() == ["p2"]
    assert client.delete("/api/patients/p1").status_code == 404
    assert "sister" in json.dumps(client.get("/api/patients/p2/export").json())


def test_a_token_is_required_when_one_is_set(make_app: AppFactory, profile: dict) -> None:
    app = create_app(make_app(Counselor()), ServeOptions(token=TOKEN))
    with TestClient(app) as c:
        assert c.get("/api/patients").status_code == 401
        bad = c.get("/api/patients", headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 401 and bad.json()["error"] == "Unauthorized"
        ok = c.get("/api/patients", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        assert c.get("/").status_code == 200  # the page itself holds no data


def test_binding_beyond_loopback_needs_a_token() -> None:
    check_bind(ServeOptions(host="127.0.0.1"))
    check_bind(ServeOptions(host="::1"))
    check_bind(ServeOptions(host="0.0.0.0", token=TOKEN))
    with pytest.raises(ConfigError, match="without an API token"):
        check_bind(ServeOptions(host="0.0.0.0"))
    with pytest.raises(ConfigError, match="at least"):
        check_bind(ServeOptions(host="0.0.0.0", token="short"))


def test_no_cors_unless_configured(make_app: AppFactory) -> None:
    origin = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(make_app(Counselor()))) as c:
        r = c.options("/api/patients", headers=origin)
        assert "access-control-allow-origin" not in r.headers
    allowed = ServeOptions(cors_origins=["https://elsewhere.example"])
    with TestClient(create_app(make_app(Counselor()), allowed)) as c:
        r = c.options("/api/patients", headers=origin)
        assert r.headers["access-control-allow-origin"] == "https://elsewhere.example"


def test_request_bodies_are_bounded(make_app: AppFactory, profile: dict) -> None:
    app = create_app(make_app(Counselor()), ServeOptions(max_body_bytes=2048))
    with TestClient(app) as c:
        _start(c, profile)
        r = c.post("/api/patients/p1/sessions/1/messages", json={"text": "x" * 5000})
        assert r.status_code == 413 and r.json()["error"] == "RequestTooLarge"
        assert c.get("/api/patients/p1/sessions/1").json()["turns"] == []


def test_the_openapi_schema_lists_every_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/patients",
        "/api/patients/{patient_id}/sessions",
        "/api/patients/{patient_id}/sessions/{session_no}/messages",
        "/api/patients/{patient_id}/sessions/{session_no}/stream",
        "/api/patients/{patient_id}/sessions/{session_no}/end",
        "/api/patients/{patient_id}/export",
        "/api/runs",
        "/api/runs/{name}/transcript",
    ):
        assert path in paths, path


def _write_run(root: Path) -> Path:
    run = root / "smoke"
    run.mkdir(parents=True)
    base = {"experiment": "smoke", "counselor": "theramind", "seed": 0, "patient_id": "anx"}
    turn = {
        **base,
        "record": "turn",
        "session_no": 1,
        "round": 1,
        "prompt": "Hello, what brings you here?",
        "patient": {"text": "<script>alert(1)</script> I worry.", "attitude": "positive"},
        "response": {
            "reply": "That sounds hard.",
            "strategy": "reflection",
            "therapies": ["cbt"],
            "phase": "assessment",
            "perception": {"emotion": "fear", "intensity": 0.5, "attitude": "positive"},
            "risk_level": "none",
            "fallbacks": [],
        },
    }
    session = {**base, "record": "session", "session_no": 1, "rounds": 1, "end_reason": "patient"}
    (run / "turns.jsonl").write_text(json.dumps(turn) + "\n" + '{"torn', encoding="utf-8")
    (run / "sessions.jsonl").write_text(json.dumps(session) + "\n", encoding="utf-8")
    (run / "report" / "figures").mkdir(parents=True)
    (run / "report" / "figures" / "radar.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    (run / "secret.txt").write_text("not a figure")
    return run


def test_the_run_viewer_lists_indexes_and_reads_runs(make_app: AppFactory, tmp_path: Path) -> None:
    _write_run(tmp_path / "runs")
    with TestClient(create_app(make_app(Counselor()), runs_dir=tmp_path / "runs")) as c:
        listing = c.get("/api/runs").json()
        assert [(r["name"], r["sessions"], r["turns"]) for r in listing["runs"]] == [
            ("smoke", 1, 1)
        ]
        index = c.get("/api/runs/smoke").json()
        assert index["tracks"][0]["patient_id"] == "anx"
        assert index["tracks"][0]["sessions"][0]["complete"] is True
        assert index["figures"] == ["report/figures/radar.png"]
        query = {"counselor": "theramind", "patient_id": "anx", "session_no": 1}
        transcript = c.get("/api/runs/smoke/transcript", params=query).json()
        assert transcript["opening"] == "Hello, what brings you here?"
        assert transcript["rounds"][0]["strategy"] == "reflection"
        assert transcript["rounds"][0]["patient"].startswith("<script>")
        assert c.get("/api/runs/smoke/figures/report/figures/radar.png").status_code == 200
        assert c.get("/api/runs/smoke/figures/secret.txt").status_code == 404
        assert c.get("/api/runs/smoke/figures/..%2F..%2Fetc%2Fpasswd").status_code == 404
        assert c.get("/api/runs/..").status_code in (404, 422)
        missing = c.get("/api/runs/smoke/transcript", params={**query, "session_no": 9})
        assert missing.status_code == 404


def test_serve_refuses_an_open_bind_without_a_token(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "THERAMIND_API_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "theramind.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "THERAMIND_HOME": str(tmp_path)},
    )
    assert done.returncode != 0
    assert "without an API token" in done.stdout + done.stderr
    assert "THERAMIND_API_TOKEN" in done.stdout + done.stderr
