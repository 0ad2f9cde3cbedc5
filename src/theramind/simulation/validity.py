"""Whether a run's records can be trusted: fallback rates per counselor and role, completeness.

A model call *fell back* when the documented fallback replaced its answer (the server was down,
the output did not validate, the reply was empty). Fallbacks keep a conversation going but are
no evidence about a counselor, so a run whose fallback rate passes the threshold
(`limits.max_fallback_rate`) is marked INVALID. A crisis reply the model did write but that the
safety check replaced with the safe template is a safety action, counted apart and not held
against the run. A *degraded* turn is one whose counselor calls all fell back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from theramind.records import CallUsage
from theramind.simulation.records import SessionLog, TurnLog, read_jsonl

DEFAULT_MAX_FALLBACK_RATE = 0.10
EXIT_INVALID = 3
"""Exit code of `theramind simulate` for a run marked invalid (1 is a usage or config error)."""
EXIT_INCOMPLETE = 4
"""Exit code of `theramind simulate` for a run that ended with sessions still to run."""


class RoleRate(BaseModel):
    """Model calls of one role and how many of them fell back."""

    calls: int = 0
    fallbacks: int = 0

    @property
    def rate(self) -> float:
        """The share of calls that fell back (0 without calls)."""
        return self.fallbacks / self.calls if self.calls else 0.0


class CounselorValidity(BaseModel):
    """Fallbacks and degraded turns of one counselor."""

    counselor: str
    turns: int = 0
    degraded_turns: int = 0
    safety_replacements: int = 0
    roles: dict[str, RoleRate] = Field(default_factory=dict)

    @property
    def calls(self) -> int:
        """Model calls of every role."""
        return sum(r.calls for r in self.roles.values())

    @property
    def fallback_rate(self) -> float:
        """The share of this counselor's model calls (every role) that fell back."""
        fallbacks = sum(r.fallbacks for r in self.roles.values())
        return fallbacks / self.calls if self.calls else 0.0


class RunValidity(BaseModel):
    """Whether a run is complete and valid, and why not."""

    sessions_done: int
    sessions_total: int
    max_fallback_rate: float = DEFAULT_MAX_FALLBACK_RATE
    counselors: list[CounselorValidity] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every planned session has a record."""
        return self.sessions_done >= self.sessions_total

    @property
    def valid(self) -> bool:
        """Whether no counselor's fallback rate passes the threshold in any role."""
        return not self.problems

    @property
    def progress(self) -> str:
        """Completed over planned sessions, e.g. '59/500 sessions'."""
        return f"{self.sessions_done}/{self.sessions_total} sessions"

    def verdict(self) -> str:
        """One line: complete or not, valid or not, and why."""
        parts = [self.progress]
        parts.append("complete" if self.complete else "INCOMPLETE (rerun to resume)")
        if self.valid:
            parts.append(f"valid (fallbacks at most {self.max_fallback_rate:.0%} per role)")
        else:
            parts.append("INVALID: " + "; ".join(self.problems))
        return ", ".join(parts)

    def status(self) -> dict[str, Any]:
        """The verdict as plain data, for `run.json`."""
        return {
            "sessions_done": self.sessions_done,
            "sessions_total": self.sessions_total,
            "complete": self.complete,
            "valid": self.valid,
            "max_fallback_rate": self.max_fallback_rate,
            "problems": self.problems,
            "fallback_rates": {
                c.counselor: {role: round(r.rate, 4) for role, r in c.roles.items()}
                for c in self.counselors
            },
            "degraded_turns": {c.counselor: c.degraded_turns for c in self.counselors},
        }


def _safety_replacement(call: CallUsage, crisis: bool) -> bool:
    return crisis and call.agent == "responder" and call.error is None


def _count(entry: CounselorValidity, calls: Iterable[CallUsage], crisis: bool = False) -> None:
    for call in calls:
        rate = entry.roles.setdefault(call.role, RoleRate())
        rate.calls += 1
        if call.fallback and _safety_replacement(call, crisis):
            entry.safety_replacements += 1
        elif call.fallback:
            rate.fallbacks += 1


def assess(
    turns: Sequence[TurnLog],
    sessions: Sequence[SessionLog],
    *,
    sessions_total: int,
    max_fallback_rate: float = DEFAULT_MAX_FALLBACK_RATE,
    counselors: Sequence[str] = (),
) -> RunValidity:
    """Count fallbacks per counselor and role over a run's records and judge the run."""
    by: dict[str, CounselorValidity] = {}

    def entry(name: str) -> CounselorValidity:
        return by.setdefault(name, CounselorValidity(counselor=name))

    for name in counselors:
        entry(name)
    for t in turns:
        e = entry(t.counselor)
        e.turns += 1
        own = t.response.calls
        crisis = t.response.crisis
        if own and all(c.fallback and not _safety_replacement(c, crisis) for c in own):
            e.degraded_turns += 1
        _count(e, own, crisis)
        if t.patient.usage is not None:
            _count(e, [t.patient.usage])
    for s in sessions:
        raw = (s.counselor_close or {}).get("calls") or []
        _count(entry(s.counselor), (CallUsage.model_validate(c) for c in raw))
    result = RunValidity(
        sessions_done=len(sessions),
        sessions_total=sessions_total,
        max_fallback_rate=max_fallback_rate,
        counselors=list(by.values()),
    )
    for e in result.counselors:
        for role, rate in sorted(e.roles.items()):
            if rate.rate > max_fallback_rate:
                result.problems.append(
                    f"{e.counselor}: {rate.fallbacks}/{rate.calls} {role} calls fell back "
                    f"({rate.rate:.0%} > {max_fallback_rate:.0%})"
                )
    return result


def planned_sessions(header: dict[str, Any]) -> int:
    """Sessions a run plans (counselors × seeds × patients × sessions), from its `run.json`."""
    exp = header.get("experiment") or {}
    tracks = len(exp.get("counselors") or []) * len(exp.get("seeds") or [0])
    return tracks * len(header.get("patients") or []) * int(exp.get("sessions") or 0)


def threshold_of(header: dict[str, Any]) -> float:
    """The run's `limits.max_fallback_rate` (the default for runs recorded without one)."""
    limits = (header.get("settings") or {}).get("limits") or {}
    return float(limits.get("max_fallback_rate", DEFAULT_MAX_FALLBACK_RATE))


def read_header(run_dir: Path | str) -> dict[str, Any]:
    """Return a run directory's `run.json` (empty when it has none)."""
    path = Path(run_dir) / "run.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def assess_run(run_dir: Path | str) -> RunValidity:
    """Judge a run directory from its records and header."""
    root = Path(run_dir)
    header = read_header(root)
    sessions = read_jsonl(root / "sessions.jsonl", SessionLog)
    names = [c["name"] for c in (header.get("experiment") or {}).get("counselors") or []]
    return assess(
        read_jsonl(root / "turns.jsonl", TurnLog),
        sessions,
        sessions_total=planned_sessions(header) or len(sessions),
        max_fallback_rate=threshold_of(header),
        counselors=names,
    )


def write_status(run_dir: Path | str, validity: RunValidity) -> None:
    """Store the verdict in `run.json` under `status` (atomically; the header stays as it was)."""
    path = Path(run_dir) / "run.json"
    header = read_header(path.parent)
    if not header:
        return
    header["status"] = validity.status()
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(header, indent=2), encoding="utf-8")
    tmp.replace(path)


def validity_section(run_dir: Path | str) -> list[str]:
    """The report's section on completeness and fallbacks (Markdown lines)."""
    v = assess_run(run_dir)
    lines = ["## Run validity", ""]
    if not v.complete:
        lines += [
            f"**INCOMPLETE: {v.progress}.** The run was interrupted or failed; every mean "
            "below covers only the finished sessions. Rerun `theramind simulate` to resume.",
            "",
        ]
    if not v.valid:
        lines += [
            "**INVALID: too many model calls fell back.** Fallbacks keep a session going but "
            "are not the counselor's work, so these results are no evidence: "
            + "; ".join(v.problems)
            + ".",
            "",
        ]
    roles = sorted({role for c in v.counselors for role in c.roles})
    rows = []
    for c in v.counselors:
        cells = [
            f"{c.roles[r].rate:.1%} ({c.roles[r].fallbacks}/{c.roles[r].calls})"
            if r in c.roles
            else "–"
            for r in roles
        ]
        rows.append(
            f"| {c.counselor} | {c.turns} | {c.degraded_turns} | {' | '.join(cells)} | "
            f"{c.safety_replacements} |"
        )
    lines += [
        f"{v.verdict()}. Fallback rate: the share of model calls whose answer the documented "
        "fallback replaced, per role; degraded turns: turns whose counselor calls all fell "
        "back; safe templates: crisis replies replaced by the safety template (not counted as "
        f"fallbacks). A run is invalid above {v.max_fallback_rate:.0%} in any role.",
        "",
        "| counselor | turns | degraded turns | "
        + " | ".join(f"{r} fallbacks" for r in roles)
        + " | safe templates |",
        "|" + "---|" * (4 + len(roles)),
        *rows,
        "",
    ]
    return lines
