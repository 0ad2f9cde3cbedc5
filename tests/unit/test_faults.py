"""Model faults: 100 sessions against a server that fails 10 % of calls lose nothing."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest

from theramind import TheraMind, load_config
from theramind.agents.responder import CHARS_PER_WORD
from theramind.memory import HashingEmbedder, build_memory
from theramind.services import build_services
from theramind.testing.shapes import SHAPES, VALID_SHAPES
from theramind.testing.stub_server import FAULTS, StubConfig, StubServer

PATIENT_LINES = [
    "I haven't been sleeping well since the move.",
    "My sister says I'm overreacting, but she doesn't get it.",
    "No, that won't work, I've already tried it.",
    "Maybe I could try writing things down before bed.",
    "I get so angry at myself when I mess up at work.",
    "Honestly I don't know why I'm even here.",
]
CLOSING = "Thanks, that's all for today, bye."
STAGE = {"diagnostician.perceive": "perceive", "strategist.plan": "plan", "responder": "respond"}


def test_100_sessions_with_faults_on_10_percent_of_calls(tmp_path: Path) -> None:
    rng = random.Random(11)
    config = StubConfig(fault_rate=0.10, faults=FAULTS, timeout_sleep_s=0.4, seed=5)
    with StubServer(config) as server:
        spec = {
            "backend": "openai",
            "base_url": server.base_url,
            "model": "stub",
            "timeout_s": 0.25,
            "retries": 1,
            "backoff_s": 0.0,
            "structured_output": "json_schema",
        }
        settings = load_config(
            None,
            models={"counselor": spec, "patient": "scripted", "judge": "scripted"},
            storage={"home": str(tmp_path)},
            memory={"backend": "inmemory"},
            limits={"structured_retries": 1, "max_rounds": 6},
        )
        services = build_services(
            settings, memory=build_memory(settings, embedder=HashingEmbedder())
        )
        app = TheraMind(services)
        crashed, sent, stored, fallback_turns = 0, 0, 0, 0
        sessions = 0
        for patient in range(20):
            pid = f"fault-{patient}"
            app.register_patient({"patient_id": pid, "presenting_problem": "low mood"})
            for _ in range(5):
                sessions += 1
                try:
                    session = app.start_session(pid)
                    lines = [*rng.sample(PATIENT_LINES, k=rng.randint(2, 4)), CLOSING]
                    for line in lines:
                        if session.status != "open":
                            break
                        result = session.respond(line)
                        sent += 1
                        assert result.reply.strip()
                        for call in result.record.calls:
                            if call.fallback:
                                stage = STAGE[call.agent]
                                assert stage in result.record.fallbacks, (stage, result.record)
                        fallback_turns += bool(result.record.fallbacks)
                    outcome = session.end()
                    for name in outcome.fallbacks:
                        assert name in {"efficacy", "decision", "formulation", "summary"}
                except Exception:  # a crash is what this test counts
                    crashed += 1
                    raise
                stored += len(services.store.turns(pid, session.session_no))
        faults = sum(r.fault is not None for r in server.requests)
        app.close()
    print(  # figures for the record; run with -s to see them
        f"sessions={sessions} turns_sent={sent} turns_stored={stored} crashed={crashed} "
        f"requests={len(server.requests)} faults={faults} turns_with_fallback={fallback_turns}"
    )
    assert sessions == 100
    assert crashed == 0
    assert stored == sent, "a turn was lost"
    assert faults > 50, "the server did not inject enough faults to mean anything"
    assert fallback_turns > 0, "no fault ever reached a fallback: retries hid everything"


CLIENT_TIMEOUT_S = 0.3


def _shape_app(home: Path, server: StubServer) -> TheraMind:
    spec = {
        "backend": "openai",
        "base_url": server.base_url,
        "model": "stub",
        "timeout_s": CLIENT_TIMEOUT_S,
        "retries": 0,
        "backoff_s": 0.0,
        "structured_output": "json_schema",
    }
    settings = load_config(
        None,
        models={"counselor": spec, "patient": "scripted", "judge": "scripted"},
        storage={"home": str(home)},
        memory={"backend": "inmemory"},
        limits={"structured_retries": 1, "max_rounds": 6},
    )
    return TheraMind(
        build_services(settings, memory=build_memory(settings, embedder=HashingEmbedder()))
    )


def test_the_fault_table_covers_every_known_shape() -> None:
    assert len(SHAPES) >= 27
    assert set(FAULTS) == set(SHAPES)
    for crashed_before in (
        "content_parts",
        "content_int",
        "choices_str",
        "message_str",
        "usage_str",
        "deep_nesting",
        "lone_surrogate",
        "huge_reply",
        "trickle",
    ):
        assert crashed_before in SHAPES


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_response_shape_degrades_to_a_marked_fallback(tmp_path: Path, shape: str) -> None:
    """Every call of a whole session answered with one shape: nothing escapes, nothing is lost."""
    config = StubConfig(fault_rate=1.0, faults=(shape,), timeout_sleep_s=0.8, trickle_s=1.5, seed=3)
    with StubServer(config) as server:
        app = _shape_app(tmp_path, server)
        try:
            app.register_patient({"patient_id": "p-shape", "presenting_problem": "low mood"})
            session = app.start_session("p-shape")
            lines = ["I haven't been sleeping well since the move.", CLOSING]
            results = []
            for line in lines:
                started = time.perf_counter()
                results.append(session.respond(line))
                # three calls, each within its deadline (plus one structured retry each)
                assert time.perf_counter() - started < 6 * CLIENT_TIMEOUT_S + 2.0, shape
            outcome = session.end()
            stored = app.services.store.turns("p-shape", session.session_no)
        finally:
            app.close()
    assert [t.turn for t in stored] == [1, 2], "a turn was lost"
    limit = app.settings.limits.reply_max_words * CHARS_PER_WORD + 3
    for result in results:
        reply = result.reply
        assert len(reply.split()) >= 2, (shape, reply)
        assert len(reply) <= limit + 250, (shape, len(reply))  # + the closing safety line
        assert "\x00" not in reply and not re.search("[\ud800-\udfff]", reply), shape
        for call in result.record.calls:
            if call.fallback:
                assert STAGE[call.agent] in result.record.fallbacks, (shape, result.record)
    for name in outcome.fallbacks:
        assert name in {"efficacy", "decision", "formulation", "summary"}
    marked = [name for r in results for name in r.record.fallbacks] + outcome.fallbacks
    if shape in VALID_SHAPES:
        # the stub's answers are random but valid: a crisis template may replace a reply, but
        # no call failed and no structured answer was given up on
        calls = [c for r in results for c in r.record.calls]
        assert not any(c.error for c in calls), (shape, [c.error for c in calls])
        assert not any(c.fallback for c in calls if c.agent != "responder"), shape
        assert not outcome.fallbacks, (shape, outcome.fallbacks)
    else:
        assert marked, f"{shape}: every call was faulted yet nothing is marked as a fallback"
