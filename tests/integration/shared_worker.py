"""A TheraMind worker for the shared-state test: serves its patients' sessions, interleaved.

Usage: python shared_worker.py SETTINGS_JSON PATIENTS TURNS DELAY
(SETTINGS_JSON: the `storage` and `memory` settings; PATIENTS: comma-separated ids).
Prints one JSON line per acknowledged turn, and one per closed session. A restarted worker
resumes each open session after the turns the store already holds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripted import Counselor
from theramind import TheraMind, load_config
from theramind.llm import Request, ScriptedBackend
from theramind.memory import HashingEmbedder, build_memory
from theramind.services import build_services


def main() -> None:
    config, patients = json.loads(sys.argv[1]), sys.argv[2].split(",")
    turns, delay = int(sys.argv[3]), float(sys.argv[4])
    settings = load_config(
        None,
        models={"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
        storage=config["storage"],
        memory=config["memory"],
    )
    counselor = Counselor()

    def slow(request: Request) -> object:
        time.sleep(delay)
        return counselor(request)

    services = build_services(
        settings,
        backends={"counselor": ScriptedBackend(handler=slow)},
        memory=build_memory(settings, embedder=HashingEmbedder()),
    )
    app = TheraMind(services)
    sessions = {}
    for pid in patients:
        known = app.services.store.has_patient(pid)
        profile = None if known else {"patient_id": pid, "pseudonym": pid}
        sessions[pid] = app.start_session(pid, profile=profile)
    done = {pid: len(session.turns) for pid, session in sessions.items()}
    print(json.dumps({"started": done}), flush=True)
    for i in range(turns):
        for pid, session in sessions.items():
            if i < done[pid]:
                continue  # stored before this worker restarted
            text = f"{pid} says thing {i}"
            result = session.respond(text)
            print(json.dumps({"ack": [pid, result.record.turn, text]}), flush=True)
    for pid, session in sessions.items():
        outcome = session.end()
        print(json.dumps({"closed": [pid, outcome.session_no]}), flush=True)
    app.close()


if __name__ == "__main__":
    main()
