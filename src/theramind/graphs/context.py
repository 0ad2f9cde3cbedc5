"""Typed views of a graph's plain-JSON state: what each node reads, validated once.

A thread's checkpointed state stays plain JSON, so any LangGraph server can load it. A node
builds one context from its state and runtime and reads typed records from it; each field is
validated on first use and kept for the rest of the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from langgraph.runtime import Runtime
from pydantic import BaseModel, TypeAdapter

from theramind.agents.base import AgentOutput
from theramind.config import LimitSettings, Taxonomy
from theramind.locales import PromptSet
from theramind.records import (
    CallUsage,
    EfficacyReport,
    Exchange,
    Formulation,
    MemoryItem,
    Perception,
    RiskLevel,
    RiskScreen,
    SessionPlan,
    StrategyChoice,
    TherapyDecision,
    TurnRecord,
)
from theramind.safety import CrisisResources
from theramind.services import CounselContext, Services

RISK_LEVEL: TypeAdapter[RiskLevel] = TypeAdapter(RiskLevel)


def dump(value: BaseModel) -> dict[str, Any]:
    """A record as the plain JSON a graph state holds."""
    return value.model_dump(mode="json")


def call_update(name: str, out: AgentOutput[Any], key: str) -> dict[str, Any]:
    """A node's update after one agent call: its value under `key`, the call, any fallback."""
    return {
        key: dump(out.value),
        "calls": [dump(out.call)],
        "fallbacks": [name] if out.fallback else [],
    }


def turn_count(state: Mapping[str, Any]) -> int:
    """How many turns a session's thread has had (older threads kept every turn)."""
    count = state.get("turn_count")
    return count if isinstance(count, int) else len(state.get("turns", []))


def risk_is_open(state: Mapping[str, Any]) -> bool:
    """Return whether a risk is open: raised this session, or carried over unfollowed."""
    return bool(state.get("risk_open")) or (state.get("plan") or {}).get("open_risk") is not None


class NodeContext:
    """What every node has: its state, the services, and whose session it is."""

    def __init__(self, state: Mapping[str, Any], runtime: Runtime[CounselContext]) -> None:
        """Wrap one node's state and runtime (the services resolve once here)."""
        self.state = state
        self.counsel = runtime.context
        self.services: Services = runtime.context.resolve()

    @property
    def patient_id(self) -> str:
        """The session's patient."""
        return self.counsel.patient_id

    @property
    def session_no(self) -> int:
        """The session's number."""
        return self.counsel.session_no

    @property
    def limits(self) -> LimitSettings:
        """The configured limits."""
        return self.services.settings.limits

    @cached_property
    def plan(self) -> SessionPlan:
        """The session's plan."""
        return SessionPlan.model_validate(self.state["plan"])


class TurnContext(NodeContext):
    """One node's typed view of a turn of the session graph.

    It is the `theramind.agents.turn.TurnView` the per-turn agents take.
    """

    @property
    def message(self) -> str:
        """The patient's message (checked by `screen`)."""
        return str(self.state["message"])

    @cached_property
    def prompts(self) -> PromptSet:
        """The prompt templates of the session's language."""
        plan = self.state.get("plan") or {}
        return self.services.prompts(str(plan.get("language") or "en"))

    @cached_property
    def recent(self) -> list[Exchange]:
        """What the prompts quote of the last turns the thread keeps (only the most quoted)."""
        keep = max(0, self.limits.recent_turns_in_prompt)
        turns = self.state.get("turns", [])
        return [Exchange.model_validate(t) for t in (turns[-keep:] if keep else [])]

    @cached_property
    def screen(self) -> RiskScreen:
        """The layered risk screen of the message."""
        return RiskScreen.model_validate(self.state["screen"])

    @cached_property
    def perception(self) -> Perception:
        """The diagnostician's perception of the message."""
        return Perception.model_validate(self.state["perception"])

    @cached_property
    def recalled(self) -> list[MemoryItem]:
        """The memories recalled for this turn."""
        return [MemoryItem.model_validate(m) for m in self.state.get("recalled", [])]

    @cached_property
    def choice(self) -> StrategyChoice:
        """The strategy chosen for the reply."""
        return StrategyChoice.model_validate(self.state["choice"])

    @cached_property
    def calls(self) -> list[CallUsage]:
        """The model calls this turn has made so far."""
        return [CallUsage.model_validate(c) for c in self.state.get("calls", [])]

    @property
    def used(self) -> list[str]:
        """The strategies used so far, most recent last."""
        used = self.state.get("used")
        if used is not None:
            return list(used)
        return [t["strategy"] for t in self.state.get("turns", [])]

    @property
    def turn_no(self) -> int:
        """This turn's number in the session."""
        return turn_count(self.state) + 1

    @property
    def risk_open(self) -> bool:
        """Whether a risk is open (this session or carried over)."""
        return risk_is_open(self.state)

    @cached_property
    def risk_level(self) -> RiskLevel:
        """The turn's combined risk level (set by `assess`)."""
        return RISK_LEVEL.validate_python(self.state["risk_level"])

    @property
    def closing(self) -> bool:
        """Whether this turn closes the session (set by `assess`)."""
        return bool(self.state["closing"])

    @property
    def injection(self) -> bool:
        """Whether the message tried to instruct the counselor."""
        return bool(self.state.get("injection"))

    @property
    def taxonomy(self) -> Taxonomy:
        """The strategies, therapies, phases and emotions in use."""
        return self.services.taxonomy

    @property
    def resources(self) -> CrisisResources:
        """The crisis lines of the configured locale."""
        return self.services.resources


class CloseContext(NodeContext):
    """One node's typed view of a session close (the course graph)."""

    @cached_property
    def prompts(self) -> PromptSet:
        """The prompt templates of the session's language."""
        return self.services.prompts(self.plan.language)

    @cached_property
    def turns(self) -> list[TurnRecord]:
        """The session's stored turns (read from the store, never kept in the state)."""
        return self.services.store.turns(self.patient_id, self.session_no)

    @cached_property
    def efficacy(self) -> EfficacyReport:
        """The efficacy verdict of `evaluate_efficacy`."""
        return EfficacyReport.model_validate(self.state["efficacy"])

    @cached_property
    def decision(self) -> TherapyDecision:
        """The therapy decision of `decide_therapy`."""
        return TherapyDecision.model_validate(self.state["decision"])

    @cached_property
    def formulation(self) -> Formulation:
        """The formulation of `update_formulation`."""
        return Formulation.model_validate(self.state["formulation"])
