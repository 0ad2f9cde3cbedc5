"""Records of a simulated run, one JSON line each: turns, sessions, and run events."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from theramind.records import CallUsage, utcnow
from theramind.simulation.counselors import CounselorTurn
from theramind.simulation.latent import LatentState, Questionnaire
from theramind.simulation.patient import PatientTurn
from theramind.strict import Strict

R = TypeVar("R", bound=BaseModel)
VOLATILE = frozenset({"created_at", "started_at", "finished_at", "latency_s", "wall_s"})
"""Fields that differ between identical runs (clock readings)."""


class EndReason(StrEnum):
    """Why a session ended: one of three closes, or the side whose failure ended it."""

    PATIENT_CLOSED = "patient_closed"
    COUNSELOR_CLOSED = "counselor_closed"
    ROUND_CAP = "round_cap"
    COUNSELOR_ERROR = "counselor_error"
    PATIENT_ERROR = "patient_error"
    INFRASTRUCTURE_ERROR = "infrastructure_error"
    """A model server, the store or the disk failed, not the code of either side."""

    @property
    def is_error(self) -> bool:
        """Whether the session ended by a failure."""
        return self.value.endswith("_error")


class RoleUsage(Strict):
    """Model calls, tokens and model time of one role."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0

    def add(self, call: CallUsage) -> None:
        """Count one agent call (each of its attempts is a model request)."""
        self.calls += max(1, call.attempts)
        self.prompt_tokens += call.prompt_tokens
        self.completion_tokens += call.completion_tokens
        self.latency_s = round(self.latency_s + call.latency_s, 4)


def usage_by_role(calls: Iterable[CallUsage]) -> dict[str, RoleUsage]:
    """Sum calls per role."""
    out: dict[str, RoleUsage] = {}
    for call in calls:
        out.setdefault(call.role, RoleUsage()).add(call)
    return out


class TrackKey(Strict):
    """Which counselor treats which patient under which seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    counselor: str
    seed: int
    patient_id: str

    @property
    def slug(self) -> str:
        """A path-safe name for this track."""
        return f"{self.counselor}/s{self.seed}/{self.patient_id}"


class TurnLog(Strict):
    """One round: what the patient heard, said and hid, and what the counselor did."""

    record: Literal["turn"] = "turn"
    experiment: str
    counselor: str
    seed: int
    patient_id: str
    session_no: int
    round: int
    prompt: str = Field(description="The counselor text the patient answered.")
    patient: PatientTurn
    response: CounselorTurn
    latent: LatentState
    usage: dict[str, RoleUsage] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)


class TherapyStep(Strict):
    """A therapy decision's kind and the therapies it leads to."""

    action: str = Field(description="start, keep, adjust or switch.")
    therapies: list[str] = Field(default_factory=list)


class DecisionLog(Strict):
    """The therapy decision at a session's close: what the counselor proposed, what it applied.

    They differ when something overrides the counselor's choice (the fixed-therapy ablation
    keeps the first session's therapy whatever it proposes).
    """

    proposed: TherapyStep
    applied: TherapyStep
    reason: str = ""


def change_kind(before: Sequence[str], after: Sequence[str]) -> str:
    """Name a change of therapies: keep (same set), start, adjust (overlap) or switch."""
    old, new = set(before), set(after)
    if old == new:
        return "keep"
    if not old:
        return "start"
    return "adjust" if old & new else "switch"


def _step(data: Any, default: str) -> TherapyStep | None:
    if not isinstance(data, dict):
        return None
    therapies = [str(t) for t in data.get("therapies") or []]
    return TherapyStep(action=str(data.get("action") or default), therapies=therapies)


def decision_log(close: dict[str, Any] | None, therapies: Sequence[str]) -> DecisionLog | None:
    """Read the therapy decision from a counselor's close record (None when it made none).

    A TheraMind close holds `decision` (proposed) and `applied`; a close without `applied`
    applied what it proposed. A counselor that only names the next therapy (`therapy`) is
    read as keeping or switching to it. `therapies`: those used in the session just closed.
    """
    if not close:
        return None
    proposed = _step(close.get("decision"), "")
    if proposed is None and close.get("therapy"):
        chosen = [str(close["therapy"])]
        proposed = TherapyStep(action=change_kind(therapies, chosen), therapies=chosen)
        reason = str(close.get("answer", ""))
    else:
        reason = str((close.get("decision") or {}).get("reason", ""))
    if proposed is None:
        return None
    if not proposed.action:
        proposed.action = change_kind(therapies, proposed.therapies)
    applied = _step(close.get("applied"), proposed.action) or proposed.model_copy(deep=True)
    return DecisionLog(proposed=proposed, applied=applied, reason=reason)


class SessionLog(Strict):
    """One completed session: how it ended, what changed, what the patient reported."""

    record: Literal["session"] = "session"
    experiment: str
    counselor: str
    seed: int
    patient_id: str
    session_no: int
    category: str
    style: str
    opening: str
    rounds: int
    end_reason: EndReason
    therapies: list[str] = Field(default_factory=list)
    strategies: list[str | None] = Field(default_factory=list)
    attitudes: list[str] = Field(default_factory=list)
    understood: float
    latent_before: LatentState
    latent_after: LatentState
    questionnaire: Questionnaire
    counselor_close: dict[str, Any] | None = None
    decision: DecisionLog | None = Field(
        default=None, description="The therapy decision at the close, proposed and applied."
    )
    usage: dict[str, RoleUsage] = Field(default_factory=dict)
    model_ids: dict[str, str] = Field(default_factory=dict)
    started_at: datetime
    finished_at: datetime = Field(default_factory=utcnow)
    wall_s: float = 0.0


class RunEvent(Strict):
    """Something that happened to the run: a start, a resume, a failure, a retry, a Ctrl-C."""

    record: Literal["event"] = "event"
    kind: Literal["start", "resume", "failure", "retry", "finish", "interrupt"]
    experiment: str
    counselor: str | None = None
    seed: int | None = None
    patient_id: str | None = None
    session_no: int | None = None
    end_reason: EndReason | None = None
    error: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)


class JsonlWriter:
    """Appends records to a JSONL file, one line each, from several threads or processes.

    Each record is one `write` to a file opened in append mode, so lines from concurrent
    writers never interleave.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, record: BaseModel) -> None:
        """Write one record to the end of the file."""
        data = (record.model_dump_json() + "\n").encode("utf-8")
        with self._lock:
            try:
                fd = self._open()
            except FileNotFoundError:  # the folder is made on first write, not checked each time
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = self._open()
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)


def read_jsonl(path: Path, model: type[R]) -> list[R]:
    """Read the records of a JSONL file; a torn last line (a killed run) is skipped."""
    if not path.is_file():
        return []
    out: list[R] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(model.model_validate_json(line))
        except ValidationError:
            if i == len(lines) - 1:
                break
            raise
    return out


def rewrite_jsonl(path: Path, records: Sequence[BaseModel]) -> None:
    """Replace a JSONL file's content atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8")
    tmp.replace(path)


def strip_volatile(data: Any) -> Any:
    """Drop clock readings from dumped records, so two runs can be compared."""
    if isinstance(data, dict):
        return {k: strip_volatile(v) for k, v in data.items() if k not in VOLATILE}
    if isinstance(data, list):
        return [strip_volatile(v) for v in data]
    return data


def iter_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the raw JSON objects of a JSONL file."""
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)
