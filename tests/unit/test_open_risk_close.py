"""While a risk is open only the patient's closing words end a session, with a safety reminder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from conftest import AppFactory
from scripted import Counselor, last_user
from theramind.llm import Request, ScriptedBackend
from theramind.records import TurnRecord
from theramind.safety import safety_reminder
from theramind.storage import PatientStore
from theramind.testing.stub_server import StubConfig, StubServer

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
GREETING = "Hi. It has been a hard few weeks."
RISK = "I've been thinking that everyone would be better off without me"
DENIAL = "No, I'm not going to do anything. I just feel useless."
GOODBYE = "Thank you for listening. I have to go now, bye."


def _model_hears_goodbye(message: str) -> bool:
    """The scripted diagnostician perceives a wish to end in the denial (a misreading)."""
    return "useless" in message or "bye" in message.lower()


def _misreading_counselor() -> ScriptedBackend:
    counselor = Counselor()

    def handler(request: Request) -> Any:
        answer = counselor(request)
        if request.schema_name == "Perception":
            answer["wants_to_end"] = _model_hears_goodbye(last_user(request))
        return answer

    return ScriptedBackend(handler=handler)


def test_a_perceived_wish_to_end_does_not_close_a_session_with_an_open_risk(
    make_app: AppFactory, profile: dict
) -> None:
    app = make_app(_misreading_counselor())
    assert app.settings.limits.min_rounds == 3
    session = app.start_session("p1", profile=profile)
    assert not session.respond(GREETING).closing
    crisis = session.respond(RISK)
    assert crisis.record.crisis and not crisis.closing
    assert "?" in crisis.reply
    denial = session.respond(DENIAL)
    assert denial.record.turn == app.settings.limits.min_rounds
    assert denial.record.perception.wants_to_end and not denial.record.crisis
    assert not denial.closing and session.status == "open"
    assert safety_reminder(app.services.resources) not in denial.reply
    goodbye = session.respond(GOODBYE)
    assert goodbye.closing and session.status == "closing"
    assert goodbye.reply.endswith(safety_reminder(app.services.resources))
    assert app.services.resources.resources[0].name in goodbye.reply
    session.end()
    assert session.status == "closed"


def test_without_a_risk_the_same_perceived_wish_closes_at_min_rounds(
    make_app: AppFactory, profile: dict
) -> None:
    app = make_app(_misreading_counselor())
    session = app.start_session("p1", profile=profile)
    session.respond(GREETING)
    assert not session.respond("Work was a lot this week.").closing
    denial = session.respond(DENIAL)
    assert denial.closing and not session.risk_open
    assert safety_reminder(app.services.resources) not in denial.reply


def test_the_round_cap_waits_for_closing_words_while_a_risk_is_open(
    make_app: AppFactory, profile: dict, settings: Any
) -> None:
    capped = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"max_rounds": 3})}
    )
    app = make_app(settings=capped)
    session = app.start_session("p1", profile=profile)
    assert session.respond(RISK).record.crisis
    for text in ("Work is a lot.", "I keep going over it.", "It's the same every day."):
        result = session.respond(text)
        assert not result.closing, f"turn {result.record.turn} closed on an open risk"
    assert session.risk_open and session.status == "open"
    last = session.respond("That's all for today, bye.")
    assert last.closing and safety_reminder(app.services.resources) in last.reply


def test_a_carried_over_risk_keeps_the_next_session_open_until_closing_words(
    make_app: AppFactory, profile: dict
) -> None:
    app = make_app(_misreading_counselor())
    first = app.start_session("p1", profile=profile)
    first.respond(RISK)
    first.end()
    second = app.start_session("p1")
    assert second.plan.open_risk is not None and second.risk_open
    for text in (GREETING, "Work was a lot this week.", DENIAL):
        assert not second.respond(text).closing
    streamed = "".join(second.stream(GOODBYE))
    assert second.last is not None and second.last.closing
    assert streamed.endswith(safety_reminder(app.services.resources))
    assert second.last.reply.endswith(safety_reminder(app.services.resources))


def _stub_reply(body: dict[str, Any]) -> str | None:
    """Answer the diagnostician like the scripted model; leave everything else to the stub."""
    fmt = body.get("response_format") or {}
    if (fmt.get("json_schema") or {}).get("name") != "Perception":
        return None
    message = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    return json.dumps(
        {
            "emotion": "sadness",
            "intensity": 0.6,
            "attitude": "negative",
            "resistance": False,
            "topic_deviation": False,
            "wants_to_end": _model_hears_goodbye(message),
            "risk_level": "none",
            "risk_evidence": "",
        }
    )


def _chat(tmp_path: Path, base_url: str, lines: list[str]) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.yaml"
    model = {"backend": "openai", "base_url": base_url, "model": "stub", "retries": 0}
    config.write_text(
        yaml.safe_dump(
            {
                "models": {"counselor": model, "patient": "scripted", "judge": "scripted"},
                "storage": {"home": str(tmp_path / "home")},
                "memory": {"backend": "inmemory", "embedding_model": "hashing"},
                "config_dir": str(CONFIGS),
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("THERAMIND_")}
    return subprocess.run(
        [sys.executable, "-m", "theramind.cli", "chat", "--config", str(config), "-p", "me"],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=240,
        env={**env, "COLUMNS": "400", "NO_COLOR": "1"},
    )


def _stored_turns(tmp_path: Path) -> list[TurnRecord]:
    store = PatientStore(tmp_path / "home" / "theramind.sqlite")
    try:
        return store.turns("me", 1)
    finally:
        store.close()


def test_chat_stays_open_on_a_misread_wish_to_end_and_closes_with_a_reminder(
    tmp_path: Path,
) -> None:
    with StubServer(StubConfig(reply=_stub_reply)) as stub:
        done = _chat(tmp_path, stub.base_url, [GREETING, RISK, DENIAL, GOODBYE])
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    turns = _stored_turns(tmp_path)
    assert [t.turn for t in turns] == [1, 2, 3, 4], out
    assert turns[1].crisis and not turns[1].closing
    assert turns[2].perception.wants_to_end and not turns[2].closing
    assert turns[3].closing and "Before we stop" in turns[3].reply
    assert out.count("Counselor:") == 5  # the opening and four replies: no exit after turn 3
    assert "Before we stop" in out and "Next session:" in out


def test_chat_input_ending_without_closing_words_leaves_an_at_risk_session_open(
    tmp_path: Path,
) -> None:
    with StubServer(StubConfig(reply=_stub_reply)) as stub:
        done = _chat(tmp_path, stub.base_url, [GREETING, RISK])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Before we stop" in done.stdout and "stays open" in done.stdout
    assert "Next session:" not in done.stdout
    assert [t.turn for t in _stored_turns(tmp_path)] == [1, 2]
