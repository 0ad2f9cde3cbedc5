"""The taxonomy: the emotions, strategies, therapies and phases the agents choose among."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from theramind.config_files import read_yaml, validate_file
from theramind.errors import ConfigError
from theramind.strict import Strict


class EmotionDef(Strict):
    """An emotion the diagnostician may perceive."""

    id: str
    description: str = ""


class StrategyDef(Strict):
    """A response strategy the strategist may pick for a turn."""

    id: str
    name: str
    attitude: Literal["positive", "negative"]
    safe_under_risk: bool = False
    description: str = ""


class TherapyDef(Strict):
    """A therapy the strategist may choose for a course."""

    id: str
    name: str
    description: str = ""
    suits: list[str] = Field(default_factory=list)


class PhaseDef(Strict):
    """A phase of a course of therapy."""

    id: str
    description: str = ""


class Taxonomy(Strict):
    """Emotions, strategies, therapies and phases, as loaded from `configs/taxonomy/`."""

    emotions: list[EmotionDef] = Field(min_length=1)
    strategies: list[StrategyDef] = Field(min_length=2)
    therapies: list[TherapyDef] = Field(min_length=2)
    phases: list[PhaseDef] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Taxonomy:
        for name in ("emotions", "strategies", "therapies", "phases"):
            ids = [item.id for item in getattr(self, name)]
            if len(ids) != len(set(ids)):
                raise ValueError(f"{name}: ids must be unique")
        for attitude in ("positive", "negative"):
            if not any(s.attitude == attitude for s in self.strategies):
                raise ValueError(f"strategies: none for attitude {attitude!r}")
        if not any(s.safe_under_risk for s in self.strategies):
            raise ValueError("strategies: at least one must be safe_under_risk")
        return self

    @property
    def emotion_ids(self) -> list[str]:
        """The ids of every emotion."""
        return [e.id for e in self.emotions]

    @property
    def strategy_ids(self) -> list[str]:
        """The ids of every strategy."""
        return [s.id for s in self.strategies]

    @property
    def therapy_ids(self) -> list[str]:
        """The ids of every therapy."""
        return [t.id for t in self.therapies]

    @property
    def phase_ids(self) -> list[str]:
        """The ids of every phase."""
        return [p.id for p in self.phases]

    def strategy(self, strategy_id: str) -> StrategyDef:
        """Return a strategy by id (KeyError if unknown)."""
        for s in self.strategies:
            if s.id == strategy_id:
                return s
        raise KeyError(strategy_id)

    def therapy(self, therapy_id: str) -> TherapyDef:
        """Return a therapy by id (KeyError if unknown)."""
        for t in self.therapies:
            if t.id == therapy_id:
                return t
        raise KeyError(therapy_id)

    def allowed_strategies(self, attitude: str, risk_open: bool) -> list[StrategyDef]:
        """Return the strategies the strategist may pick for this attitude and risk state."""
        if risk_open:
            return [s for s in self.strategies if s.safe_under_risk]
        return [s for s in self.strategies if s.attitude == attitude]

    def next_phase(self, phase: str) -> str:
        """Return the phase after `phase` (the last one stays)."""
        ids = self.phase_ids
        idx = ids.index(phase) if phase in ids else 0
        return ids[min(idx + 1, len(ids) - 1)]


@functools.cache
def load_taxonomy(directory: Path) -> Taxonomy:
    """Load and validate the four taxonomy files of a directory."""
    data: dict[str, Any] = {}
    for name in ("emotions", "strategies", "therapies", "phases"):
        path = directory / f"{name}.yaml"
        raw = read_yaml(path)
        if not isinstance(raw, dict) or name not in raw:
            raise ConfigError(f"{path}: expected a mapping with key {name!r}")
        data[name] = raw[name]
    return validate_file(directory, Taxonomy, data)
