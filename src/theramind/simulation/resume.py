"""Resuming a run: check the run directory, keep completed sessions, drop half-done ones."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from theramind.errors import ConfigError
from theramind.records import utcnow
from theramind.simulation.counselors import Exchange, PastSession
from theramind.simulation.records import (
    SessionLog,
    TrackKey,
    TurnLog,
    read_jsonl,
    rewrite_jsonl,
)

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """The completed sessions found in a run directory, per track."""

    done: dict[TrackKey, list[SessionLog]] = field(default_factory=dict)
    turns: dict[tuple[TrackKey, int], list[TurnLog]] = field(default_factory=dict)

    @property
    def sessions_done(self) -> int:
        """How many sessions are complete."""
        return sum(len(run) for run in self.done.values())

    def completed(self, key: TrackKey) -> list[SessionLog]:
        """Return a track's completed sessions, in order."""
        return self.done.get(key, [])

    def history(self, key: TrackKey) -> list[PastSession]:
        """Return a track's completed sessions as a counselor needs them to rewind."""
        out = []
        for s in self.completed(key):
            rounds = sorted(self.turns.get((key, s.session_no), []), key=lambda t: t.round)
            out.append(
                PastSession(
                    session_no=s.session_no,
                    opening=s.opening,
                    exchanges=[
                        Exchange(patient=t.patient.text, counselor=t.response.reply) for t in rounds
                    ],
                    therapies=s.therapies,
                    close=s.counselor_close,
                )
            )
        return out


def _key(record: SessionLog | TurnLog) -> TrackKey:
    return TrackKey(counselor=record.counselor, seed=record.seed, patient_id=record.patient_id)


def write_header(out: Path, fingerprint: str, snapshot: dict[str, Any]) -> None:
    """Check a run directory's header matches this experiment, or write a new one.

    Raises:
        ConfigError: the directory holds a run of a different experiment definition.
    """
    header = out / "run.json"
    if header.is_file():
        previous = json.loads(header.read_text(encoding="utf-8"))
        if previous.get("fingerprint") != fingerprint:
            raise ConfigError(
                f"{out} holds a run of a different experiment definition; use another output "
                "directory or start fresh (--fresh)"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    body = {"fingerprint": fingerprint, **snapshot, "created_at": utcnow().isoformat()}
    header.write_text(json.dumps(body, indent=2), encoding="utf-8")


def load_state(out: Path, *, compact: bool = True) -> RunState:
    """Read the records; keep each track's unbroken run of completed sessions.

    With `compact`, the files are rewritten without the turns of unfinished sessions (and
    without a line torn by a killed process), so appending can go on safely.
    """
    sessions_path, turns_path = out / "sessions.jsonl", out / "turns.jsonl"
    sessions = read_jsonl(sessions_path, SessionLog)
    turns = read_jsonl(turns_path, TurnLog)
    by_track: dict[TrackKey, dict[int, SessionLog]] = {}
    for s in sessions:
        by_track.setdefault(_key(s), {})[s.session_no] = s
    state = RunState()
    for key, by_no in by_track.items():
        run: list[SessionLog] = []
        while len(run) + 1 in by_no:
            run.append(by_no[len(run) + 1])
        state.done[key] = run
    complete = {(k, s.session_no) for k, run in state.done.items() for s in run}
    kept = [t for t in turns if (_key(t), t.session_no) in complete]
    for t in kept:
        state.turns.setdefault((_key(t), t.session_no), []).append(t)
    if compact:
        if sessions_path.exists():
            rewrite_jsonl(sessions_path, [s for run in state.done.values() for s in run])
        if turns_path.exists():
            if len(kept) < len(turns):
                log.info("resume: dropping %d turns of unfinished sessions", len(turns) - len(kept))
            rewrite_jsonl(turns_path, kept)
    return state


def reset_dir(out: Path) -> None:
    """Delete a run directory (for a fresh start)."""
    if out.exists():
        log.info("deleting %s for a fresh run", out)
        shutil.rmtree(out)
