"""What a run tells while it runs (`Progress` notices) and when it is done (`RunSummary`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from theramind.simulation.records import RunEvent, TrackKey


@dataclass(frozen=True)
class Progress:
    """A progress notice for a live display."""

    kind: Literal["plan", "round", "session", "track_done", "track_failed"]
    key: TrackKey | None = None
    session_no: int = 0
    tokens: int = 0
    tracks: int = 0
    sessions: int = 0
    done_sessions: int = 0


class RunSummary(BaseModel):
    """What a run (or a resumed run) did."""

    experiment: str
    output_dir: str
    fingerprint: str
    tracks: int
    tracks_failed: int = 0
    sessions_total: int
    sessions_run: int = 0
    sessions_resumed: int = 0
    turns_run: int = 0
    tokens: dict[str, int] = Field(default_factory=dict)
    failures: list[RunEvent] = Field(default_factory=list)
    wall_s: float = 0.0
    interrupted: bool = False
    sessions_done: int = Field(default=0, description="Sessions with a record, of every run.")
    valid: bool = True
    problems: list[str] = Field(
        default_factory=list, description="Why the run is invalid (fallback rates too high)."
    )
    endpoints: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Per model endpoint (base URL): calls, failures, tokens, latency.",
    )
    engine: str = "local"

    @property
    def complete(self) -> bool:
        """Whether every planned session has a record."""
        return self.sessions_done >= self.sessions_total

    def merge(self, other: RunSummary) -> None:
        """Add the work another process did for the same run."""
        self.tracks_failed += other.tracks_failed
        self.sessions_run += other.sessions_run
        self.turns_run += other.turns_run
        for role, n in other.tokens.items():
            self.tokens[role] = self.tokens.get(role, 0) + n
        self.failures += other.failures
        self.add_endpoints(other.endpoints)

    def add_endpoints(self, usage: Mapping[str, Mapping[str, float]]) -> None:
        """Add per-endpoint usage (calls, failures, tokens, latency) to the totals."""
        for url, counts in usage.items():
            mine = self.endpoints.setdefault(url, {})
            for name, value in counts.items():
                mine[name] = round(mine.get(name, 0) + value, 6)
