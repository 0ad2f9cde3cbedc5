"""Growth: checkpoint bytes per turn and per session, the strategist prompt, and close time.

One long session (turns 10, 100, 1,000) and one patient over many sessions (sessions 10, 100,
200), on the scripted model with the hashing embedder, so only the framework's own growth is
measured. Checkpoint bytes are the bytes of the checkpoint store's rows (checkpoints and their
writes), read after each turn or session; per turn (or session) is what that one step added.

    PYTHONPATH=src python -m benchmarks.growth --turns 1000 --sessions 200
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from theramind import TheraMind, load_config
from theramind.llm import Request, ScriptedBackend
from theramind.llm.fake import request_rng, schema_instance
from theramind.memory import HashingEmbedder, build_memory
from theramind.services import build_services

LINES = [
    "Work has been piling up and I can't switch off at night.",
    "My brother called again and we argued about money.",
    "I tried the breathing exercise once, it helped a little.",
    "I keep replaying the meeting where my manager criticised me.",
    "Weekends feel empty since my friend moved away.",
    "I slept better on Tuesday, not sure why.",
]
STRATEGIST_MARK = "strategist"


class Recorder(ScriptedBackend):
    """The scripted model with calm perceptions (no crisis, no wish to end) and prompt sizes."""

    def __init__(self) -> None:
        super().__init__(handler=self._answer)
        self.strategist_chars: list[int] = []

    def _answer(self, request: Request) -> Any:
        schema = request.json_schema or {}
        props = schema.get("properties", {})
        if "risk_level" in props and "wants_to_end" in props:
            value = schema_instance(schema, request_rng(0, request.messages[-1]["content"]))
            value.update(risk_level="none", wants_to_end=False, risk_evidence="")
            return value
        return None

    def complete(self, request: Request) -> Any:
        """Record the strategist prompt's size, then answer as the scripted counselor."""
        if request.messages and "strateg" in request.schema_name.lower():
            self.strategist_chars.append(sum(len(m["content"]) for m in request.messages))
        with self._lock:
            self.calls.clear()  # the recorder keeps sizes, not requests
        return super().complete(request)


def checkpoint_bytes(home: Path) -> int:
    """Bytes in the checkpoint store's rows (checkpoints, metadata and pending writes)."""
    conn = sqlite3.connect(str(home / "checkpoints.sqlite"))
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "checkpoints" not in tables:
            return 0
        total = conn.execute(
            "SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) FROM checkpoints"
        ).fetchone()[0]
        total += conn.execute("SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes").fetchone()[0]
    finally:
        conn.close()
    return int(total)


def _app(home: Path, backend: ScriptedBackend) -> TheraMind:
    settings = load_config(
        None,
        models={"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
        storage={"home": str(home)},
        memory={"backend": "inmemory"},
        limits={"max_rounds": 100_000, "min_rounds": 100_000},
    )
    memory = build_memory(settings, embedder=HashingEmbedder())
    return TheraMind(build_services(settings, backends={"counselor": backend}, memory=memory))


def prompt_windows(chars: list[int]) -> dict[str, int]:
    """The strategist prompt's largest size early on and at the end of the session.

    One prompt's size swings by several hundred characters from turn to turn (the patient's line,
    what memory recalls, which writes have landed yet), so single turns are not compared. The
    early window starts once memory has items to recall (turn 16 on a long session); growth is
    the late window's maximum over the early one's.
    """
    width = max(1, min(15, len(chars) // 5))
    early = chars[width : 2 * width] or chars[:width]
    late = chars[-width:]
    return {
        "strategist_prompt_chars_first": chars[0],
        "strategist_prompt_chars_early_max": max(early),
        "strategist_prompt_chars_late_max": max(late),
    }


def one_session(turns: int, marks: list[int], home: Path) -> dict[str, Any]:
    """Run one session of `turns` turns; bytes added by the turns at `marks`."""
    backend = Recorder()
    app = _app(home, backend)
    app.register_patient({"patient_id": "long", "presenting_problem": "stress at work"})
    session = app.start_session("long")
    per_turn: dict[int, int] = {}
    before = checkpoint_bytes(home)
    started = time.perf_counter()
    for turn in range(1, turns + 1):
        session.respond(LINES[turn % len(LINES)] + f" ({turn})")
        if turn in marks or turn + 1 in marks:
            after = checkpoint_bytes(home)
            if turn in marks:
                per_turn[turn] = after - before
            before = after
    turns_s = time.perf_counter() - started
    started = time.perf_counter()
    session.end()
    end_s = time.perf_counter() - started
    total = checkpoint_bytes(home)
    app.close()
    return {
        "turns": turns,
        "checkpoint_bytes_per_turn": per_turn,
        "checkpoint_bytes_total": total,
        **prompt_windows(backend.strategist_chars),
        "turns_s": round(turns_s, 1),
        "end_s": round(end_s, 2),
    }


def many_sessions(sessions: int, marks: list[int], home: Path, turns: int = 3) -> dict[str, Any]:
    """Run `sessions` short sessions of one patient; bytes added by the sessions at `marks`."""
    app = _app(home, Recorder())
    app.register_patient({"patient_id": "loyal", "presenting_problem": "low mood"})
    per_session: dict[int, int] = {}
    before = checkpoint_bytes(home)
    started = time.perf_counter()
    for no in range(1, sessions + 1):
        session = app.start_session("loyal")
        for turn in range(turns):
            session.respond(LINES[(no + turn) % len(LINES)])
        session.end()
        after = checkpoint_bytes(home)
        if no in marks:
            per_session[no] = after - before
        before = after
    elapsed = time.perf_counter() - started
    total = checkpoint_bytes(home)
    app.close()
    return {
        "sessions": sessions,
        "turns_per_session": turns,
        "checkpoint_bytes_per_session": per_session,
        "checkpoint_bytes_total": total,
        "elapsed_s": round(elapsed, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both measurements and print them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--home", type=Path, default=None, help="keep the stores here")
    args = parser.parse_args(argv)
    root = args.home or Path(tempfile.mkdtemp(prefix="theramind-growth-"))
    turn_marks = [m for m in (10, 100, 1000) if m <= args.turns] or [args.turns]
    session_marks = [m for m in (10, 100, 200) if m <= args.sessions] or [args.sessions]
    report = {
        "one_session": one_session(args.turns, turn_marks, root / "session"),
        "one_patient": many_sessions(args.sessions, session_marks, root / "patient"),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
