"""A simulated run read back for evaluation: each track's completed sessions with their turns."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from theramind.config import Settings, load_config
from theramind.errors import ConfigError, TheraMindError
from theramind.simulation.experiment import ExperimentConfig, track_settings
from theramind.simulation.profiles import SimProfile, load_profiles, patients_dir
from theramind.simulation.records import SessionLog, TrackKey, TurnLog, read_jsonl

log = logging.getLogger(__name__)


@dataclass
class SessionView:
    """One completed session: its record and its turns in order."""

    log: SessionLog
    turns: list[TurnLog] = field(default_factory=list)

    @property
    def session_no(self) -> int:
        """The session's number in the course (1-based)."""
        return self.log.session_no


@dataclass
class Course:
    """One track: a counselor treating one patient under one seed, session by session."""

    key: TrackKey
    experiment: str
    category: str
    sessions: list[SessionView]
    profile: SimProfile | None = None

    def session(self, session_no: int) -> SessionView:
        """Return one session by number (KeyError if it is not complete)."""
        for s in self.sessions:
            if s.session_no == session_no:
                return s
        raise KeyError(f"{self.key.slug}: no completed session {session_no}")


@dataclass
class RunData:
    """Everything evaluation reads from a run directory."""

    root: Path
    experiment: str
    header: dict[str, Any]
    courses: list[Course]
    counselors: list[str]

    @property
    def patients(self) -> list[str]:
        """Patient ids in order of first appearance."""
        return list(dict.fromkeys(c.key.patient_id for c in self.courses))


def _key(record: SessionLog | TurnLog) -> TrackKey:
    return TrackKey(counselor=record.counselor, seed=record.seed, patient_id=record.patient_id)


def read_header(root: Path) -> dict[str, Any]:
    """Return the run's `run.json` header ({} when absent)."""
    path = root / "run.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _profiles(header: dict[str, Any]) -> dict[str, SimProfile]:
    """Load the run's patient profiles (the hidden responsiveness lives there); {} if gone."""
    directory = (header.get("experiment") or {}).get("profiles_dir")
    config_dir = (header.get("settings") or {}).get("config_dir")
    root = Path(directory) if directory else patients_dir(Path(config_dir) if config_dir else None)
    try:
        return load_profiles(root)
    except TheraMindError as exc:
        log.warning("patient profiles not loaded from %s: %s", root, exc)
        return {}


def load_run(run_dir: Path | str) -> RunData:
    """Read a run directory: completed sessions (1..k unbroken per track), turns, profiles.

    Raises:
        ConfigError: the directory holds no session records.
    """
    root = Path(run_dir)
    sessions = read_jsonl(root / "sessions.jsonl", SessionLog)
    if not sessions:
        raise ConfigError(f"{root}: no sessions.jsonl records; run `theramind simulate` first")
    turns = read_jsonl(root / "turns.jsonl", TurnLog)
    header = read_header(root)
    by_track: dict[TrackKey, dict[int, SessionLog]] = {}
    for s in sessions:
        by_track.setdefault(_key(s), {})[s.session_no] = s
    turns_by: dict[tuple[TrackKey, int], dict[int, TurnLog]] = {}
    for t in turns:
        turns_by.setdefault((_key(t), t.session_no), {})[t.round] = t
    profiles = _profiles(header)
    courses = []
    for key, by_no in by_track.items():
        views: list[SessionView] = []
        while len(views) + 1 in by_no:
            log_ = by_no[len(views) + 1]
            rounds = turns_by.get((key, log_.session_no), {})
            views.append(SessionView(log_, [rounds[r] for r in sorted(rounds)]))
        if not views:
            continue
        courses.append(
            Course(
                key=key,
                experiment=views[0].log.experiment,
                category=views[0].log.category,
                sessions=views,
                profile=profiles.get(key.patient_id),
            )
        )
    named = [c["name"] for c in (header.get("experiment") or {}).get("counselors", [])]
    seen = list(dict.fromkeys(c.key.counselor for c in courses))
    order = [n for n in named if n in seen] + [n for n in seen if n not in named]
    courses.sort(key=lambda c: (order.index(c.key.counselor), c.key.seed, c.key.patient_id))
    return RunData(
        root=root,
        experiment=courses[0].experiment if courses else "",
        header=header,
        courses=courses,
        counselors=order,
    )


def run_settings(
    data: RunData, config: Path | str | None = None, judge: str | None = None
) -> Settings:
    """Return the settings to judge a run with: the run's own unless `config` is given.

    `judge` names a model preset (e.g. `vllm`, `scripted`) that replaces the judge role's model.
    """
    experiment = data.header.get("experiment")
    if config is None and experiment:
        try:
            exp = ExperimentConfig.model_validate(experiment)
            if judge:
                exp = exp.model_copy(update={"models": {**exp.models, "judge": judge}})
            return track_settings(exp, None)
        except (ValidationError, TheraMindError) as exc:
            log.warning("the run's settings cannot be rebuilt (%s); using the defaults", exc)
    if not judge:
        return load_config(config)
    base = load_config(config)
    models: dict[str, Any] = {r: s.model_dump() for r, s in base.models.items()}
    models["judge"] = judge
    return load_config(config, models=models)
