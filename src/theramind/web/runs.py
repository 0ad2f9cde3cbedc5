"""The run viewer's API: list simulated runs, index one, read a transcript, fetch its figures."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.params import Depends
from fastapi.responses import FileResponse

from theramind.errors import InputError, UnknownPatientError

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
FIGURE_SUFFIXES = frozenset({".png", ".svg"})


class RunNotFoundError(UnknownPatientError):
    """No run, track or file of that name (answered with 404)."""


def _jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSONL file, skipping a torn last line (a run still being written)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def run_path(root: Path, name: str) -> Path:
    """Return the directory of run `name` under `root`, refusing anything outside it."""
    if not _NAME.match(name) or name in {".", ".."}:
        raise InputError(f"not a run name: {name!r}")
    path = (root / name).resolve()
    if path.parent != root or not path.is_dir():
        raise RunNotFoundError(f"no run {name!r} under {root}")
    return path


def list_runs(root: Path) -> list[dict[str, Any]]:
    """Return the runs under `root`: name, experiment, sessions and turns recorded."""
    if not root.is_dir():
        return []
    out = []
    for path in sorted(p for p in root.iterdir() if p.is_dir()):
        if not ((path / "sessions.jsonl").is_file() or (path / "turns.jsonl").is_file()):
            continue
        header = _header(path)
        out.append(
            {
                "name": path.name,
                "experiment": (header.get("experiment") or {}).get("name", path.name),
                "sessions": len(_jsonl(path / "sessions.jsonl")),
                "turns": len(_jsonl(path / "turns.jsonl")),
            }
        )
    return out


def _header(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / "run.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _track(row: dict[str, Any]) -> tuple[str, int, str]:
    return str(row.get("counselor", "")), int(row.get("seed", 0)), str(row.get("patient_id", ""))


def run_index(path: Path) -> dict[str, Any]:
    """Return what a run holds: its tracks (counselor × seed × patient) with their sessions."""
    sessions = _jsonl(path / "sessions.jsonl")
    turns = _jsonl(path / "turns.jsonl")
    tracks: dict[tuple[str, int, str], dict[int, dict[str, Any]]] = {}
    for t in turns:
        by_no = tracks.setdefault(_track(t), {})
        entry = by_no.setdefault(int(t.get("session_no", 0)), {"rounds": 0, "complete": False})
        entry["rounds"] = max(entry["rounds"], int(t.get("round", 0)))
    for s in sessions:
        by_no = tracks.setdefault(_track(s), {})
        by_no[int(s.get("session_no", 0))] = {
            "rounds": int(s.get("rounds", 0)),
            "complete": True,
            "end_reason": s.get("end_reason"),
            "therapies": s.get("therapies", []),
        }
    header = _header(path)
    return {
        "name": path.name,
        "experiment": (header.get("experiment") or {}).get("name", path.name),
        "tracks": [
            {
                "counselor": counselor,
                "seed": seed,
                "patient_id": patient,
                "sessions": [{"session_no": no, **info} for no, info in sorted(by_no.items())],
            }
            for (counselor, seed, patient), by_no in sorted(tracks.items())
        ],
        "figures": [
            str(p.relative_to(path))
            for p in sorted(path.rglob("*"))
            if p.suffix in FIGURE_SUFFIXES and p.is_file()
        ],
    }


def transcript(
    path: Path, counselor: str, patient_id: str, session_no: int, seed: int | None = None
) -> dict[str, Any]:
    """Return one session of a run: the opening, each round annotated, and how it ended."""

    def matches(row: dict[str, Any]) -> bool:
        return (
            row.get("counselor") == counselor
            and row.get("patient_id") == patient_id
            and int(row.get("session_no", 0)) == session_no
            and (seed is None or int(row.get("seed", 0)) == seed)
        )

    turns = sorted(
        (t for t in _jsonl(path / "turns.jsonl") if matches(t)),
        key=lambda t: int(t.get("round", 0)),
    )
    session = next((s for s in _jsonl(path / "sessions.jsonl") if matches(s)), None)
    if not turns and session is None:
        raise RunNotFoundError(
            f"run {path.name!r} has no session {session_no} of {counselor}/{patient_id}"
        )
    rounds = []
    for t in turns:
        response = t.get("response") or {}
        patient = t.get("patient") or {}
        rounds.append(
            {
                "round": t.get("round"),
                "patient": patient.get("text", ""),
                "patient_attitude": patient.get("attitude"),
                "reply": response.get("reply", ""),
                "perception": response.get("perception"),
                "strategy": response.get("strategy"),
                "therapies": response.get("therapies", []),
                "phase": response.get("phase"),
                "risk_level": response.get("risk_level", "none"),
                "crisis": response.get("crisis", False),
                "fallbacks": response.get("fallbacks", []),
            }
        )
    opening = (session or {}).get("opening") or (turns[0].get("prompt", "") if turns else "")
    close = (session or {}).get("counselor_close") or {}
    return {
        "run": path.name,
        "counselor": counselor,
        "patient_id": patient_id,
        "session_no": session_no,
        "opening": opening,
        "rounds": rounds,
        "complete": session is not None,
        "end_reason": (session or {}).get("end_reason"),
        "decision": close.get("decision"),
    }


def figure_path(path: Path, relative: str) -> Path:
    """Return a figure file inside a run directory, refusing other files and other places."""
    target = (path / relative).resolve()
    if path not in target.parents or target.suffix not in FIGURE_SUFFIXES or not target.is_file():
        raise RunNotFoundError(f"no figure {relative!r} in run {path.name!r}")
    return target


def add_routes(app: FastAPI, root: Path, dependencies: list[Depends]) -> None:
    """Register the run viewer's endpoints on `app`, reading runs under `root`."""

    @app.get("/api/runs", dependencies=dependencies, tags=["runs"])
    async def runs() -> dict[str, Any]:
        """List the run directories the viewer can read."""
        return {"root": str(root), "runs": await asyncio.to_thread(list_runs, root)}

    @app.get("/api/runs/{name}", dependencies=dependencies, tags=["runs"])
    async def index(name: str) -> dict[str, Any]:
        """Index one run: counselors × patients × sessions, and its figures."""
        return await asyncio.to_thread(run_index, run_path(root, name))

    @app.get("/api/runs/{name}/transcript", dependencies=dependencies, tags=["runs"])
    async def read(
        name: str, counselor: str, patient_id: str, session_no: int, seed: int | None = None
    ) -> dict[str, Any]:
        """Read one session's transcript with each round's annotations."""
        path = run_path(root, name)
        return await asyncio.to_thread(transcript, path, counselor, patient_id, session_no, seed)

    @app.get("/api/runs/{name}/figures/{relative:path}", dependencies=dependencies, tags=["runs"])
    async def figure(name: str, relative: str) -> FileResponse:
        """Return one of the run's report figures."""
        return FileResponse(figure_path(run_path(root, name), relative))
