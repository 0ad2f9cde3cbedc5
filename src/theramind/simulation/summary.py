"""Per-counselor summary of a run's records: how sessions ended, cost, and latent change."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean

from pydantic import BaseModel, Field

from theramind.simulation.records import RunEvent, SessionLog, TurnLog, read_jsonl
from theramind.simulation.validity import assess


class CounselorSummary(BaseModel):
    """What one counselor did across a run."""

    counselor: str
    tracks: int = 0
    failed: int = 0
    sessions: int = 0
    turns: int = 0
    mean_rounds: float = 0.0
    end_reasons: dict[str, int] = Field(default_factory=dict)
    calls_per_turn: float = 0.0
    prompt_tokens_per_turn: float = 0.0
    understood: float = 0.0
    phq9_change: float = Field(default=0.0, description="Mean latent PHQ-9 change, last - first.")
    gad7_change: float = Field(default=0.0, description="Mean latent GAD-7 change, last - first.")
    alliance: float = Field(default=0.0, description="Mean self-reported alliance item, 1-5.")
    fallback_rates: dict[str, float] = Field(
        default_factory=dict, description="Per role: share of model calls that fell back."
    )
    degraded_turns: int = Field(default=0, description="Turns whose counselor calls all fell back.")


def _mean(values: Sequence[float]) -> float:
    return round(fmean(values), 3) if values else 0.0


def summarize(
    sessions: list[SessionLog], turns: list[TurnLog], failures: list[RunEvent] | None = None
) -> list[CounselorSummary]:
    """Summarise records per counselor, in order of first appearance."""
    by_counselor: dict[str, list[SessionLog]] = defaultdict(list)
    for s in sessions:
        by_counselor[s.counselor].append(s)
    turns_by: dict[str, list[TurnLog]] = defaultdict(list)
    for t in turns:
        turns_by[t.counselor].append(t)
    failed = Counter(
        f.counselor for f in failures or [] if f.kind == "failure" and f.counselor is not None
    )
    quality = {c.counselor: c for c in assess(turns, sessions, sessions_total=0).counselors}
    out = []
    for name in dict.fromkeys([*by_counselor, *failed]):
        logs = by_counselor.get(name, [])
        tracks: dict[tuple[int, str], list[SessionLog]] = defaultdict(list)
        for s in logs:
            tracks[(s.seed, s.patient_id)].append(s)
        phq, gad = [], []
        for run in tracks.values():
            run.sort(key=lambda s: s.session_no)
            phq.append(run[-1].latent_after.phq9 - run[0].latent_before.phq9)
            gad.append(run[-1].latent_after.gad7 - run[0].latent_before.gad7)
        ts = turns_by.get(name, [])
        calls = [sum(u.calls for r, u in t.usage.items() if r == "counselor") for t in ts]
        tokens = [sum(u.prompt_tokens for r, u in t.usage.items() if r == "counselor") for t in ts]
        alliance = [
            fmean(
                [
                    s.questionnaire.alliance.goal,
                    s.questionnaire.alliance.task,
                    s.questionnaire.alliance.bond,
                    s.questionnaire.alliance.understood,
                ]
            )
            for s in logs
        ]
        out.append(
            CounselorSummary(
                counselor=name,
                tracks=len(tracks),
                failed=failed.get(name, 0),
                sessions=len(logs),
                turns=len(ts),
                mean_rounds=_mean([s.rounds for s in logs]),
                end_reasons=dict(Counter(s.end_reason.value for s in logs)),
                calls_per_turn=_mean(calls),
                prompt_tokens_per_turn=_mean(tokens),
                understood=_mean([s.understood for s in logs]),
                phq9_change=_mean(phq),
                gad7_change=_mean(gad),
                alliance=_mean(alliance),
                fallback_rates={role: round(r.rate, 4) for role, r in quality[name].roles.items()}
                if name in quality
                else {},
                degraded_turns=quality[name].degraded_turns if name in quality else 0,
            )
        )
    return out


def summarize_run(run_dir: Path | str) -> list[CounselorSummary]:
    """Summarise a run directory per counselor (failures: those of the latest invocation)."""
    root = Path(run_dir)
    events = read_jsonl(root / "events.jsonl", RunEvent)
    starts = [i for i, e in enumerate(events) if e.kind in ("start", "resume")]
    events = events[starts[-1] :] if starts else events
    rows = summarize(
        read_jsonl(root / "sessions.jsonl", SessionLog),
        read_jsonl(root / "turns.jsonl", TurnLog),
        events,
    )
    header = root / "run.json"
    if header.is_file():
        names = [c["name"] for c in json.loads(header.read_text())["experiment"]["counselors"]]
        rows.sort(key=lambda r: names.index(r.counselor) if r.counselor in names else len(names))
    return rows
