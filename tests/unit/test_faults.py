"""Model faults: 100 sessions against a server that fails 10 % of calls lose nothing."""

from __future__ import annotations

import random
from pathlib import Path

from theramind import TheraMind, load_config
from theramind.memory import HashingEmbedder, build_memory
from theramind.services import build_services
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
