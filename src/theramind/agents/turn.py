"""What the per-turn agents read of a turn, as one typed view.

The session graph's nodes hand the agents their `TurnContext` (validated once from the plain
JSON state); a caller outside a graph hands them a `TurnFacts` holding the same values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from theramind.config import LimitSettings, Taxonomy
from theramind.locales import PromptSet
from theramind.records import (
    MemoryItem,
    Perception,
    Quoted,
    RiskLevel,
    RiskScreen,
    SessionPlan,
    StrategyChoice,
)
from theramind.safety import CrisisResources


class TurnView(Protocol):
    """One turn as the diagnostician, strategist and responder read it.

    A member is read only by the agent that needs it: `perception` once the diagnostician
    has perceived the message, `choice` once the strategist has chosen.
    """

    @property
    def plan(self) -> SessionPlan:
        """The session's plan."""
        ...

    @property
    def message(self) -> str:
        """The patient's checked message."""
        ...

    @property
    def recent(self) -> Sequence[Quoted]:
        """The last turns of this session."""
        ...

    @property
    def screen(self) -> RiskScreen:
        """The layered risk screen of the message."""
        ...

    @property
    def perception(self) -> Perception:
        """The diagnostician's perception of the message."""
        ...

    @property
    def recalled(self) -> Sequence[MemoryItem]:
        """The memories recalled for this turn."""
        ...

    @property
    def choice(self) -> StrategyChoice:
        """The strategy chosen for the reply."""
        ...

    @property
    def used(self) -> Sequence[str]:
        """The strategies used so far, most recent last."""
        ...

    @property
    def risk_open(self) -> bool:
        """Whether a risk is open: raised earlier this session, or carried over unresolved."""
        ...

    @property
    def risk_level(self) -> RiskLevel:
        """The turn's combined risk level (both screen layers)."""
        ...

    @property
    def closing(self) -> bool:
        """Whether this turn closes the session."""
        ...

    @property
    def injection(self) -> bool:
        """Whether the message tried to instruct the counselor."""
        ...

    @property
    def taxonomy(self) -> Taxonomy:
        """The strategies, therapies, phases and emotions in use."""
        ...

    @property
    def resources(self) -> CrisisResources:
        """The crisis lines of the configured locale."""
        ...

    @property
    def limits(self) -> LimitSettings:
        """The configured limits."""
        ...

    @property
    def prompts(self) -> PromptSet:
        """The prompt templates of the session's language."""
        ...


@dataclass(frozen=True)
class TurnFacts:
    """A `TurnView` held as plain values, for calling an agent outside a graph.

    An agent reads only its own members, so `perception` and `choice` may be any value
    before the agents that produce them have run.
    """

    plan: SessionPlan
    message: str
    taxonomy: Taxonomy
    prompts: PromptSet
    resources: CrisisResources
    perception: Perception
    choice: StrategyChoice
    recent: Sequence[Quoted] = ()
    screen: RiskScreen = field(default_factory=RiskScreen)
    recalled: Sequence[MemoryItem] = ()
    used: Sequence[str] = ()
    risk_open: bool = False
    risk_level: RiskLevel = "none"
    closing: bool = False
    injection: bool = False
    limits: LimitSettings = field(default_factory=LimitSettings)
