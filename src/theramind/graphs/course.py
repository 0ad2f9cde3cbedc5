"""The cross-session loop, run when a session closes.

evaluate_efficacy → decide_therapy → update_formulation → consolidate_memory → set_next_focus
(four model calls at most).
"""

from __future__ import annotations

import logging
import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from theramind.agents import diagnostician, strategist
from theramind.lease import owner_stale
from theramind.records import (
    CallUsage,
    EfficacyReport,
    Formulation,
    SessionOutcome,
    SessionPlan,
    TherapyDecision,
    TurnRecord,
)
from theramind.services import CounselContext

log = logging.getLogger(__name__)


class CloseInput(TypedDict, total=False):
    """Nothing is required: the graph reads the session from the patient store."""


class CloseOutput(TypedDict):
    """The stored outcome."""

    outcome: dict[str, Any]


class CourseState(TypedDict, total=False):
    """State of one session close."""

    plan: dict[str, Any]
    turns: list[dict[str, Any]]
    history: list[dict[str, Any]]
    efficacy: dict[str, Any]
    decision: dict[str, Any]
    formulation: dict[str, Any]
    summary: dict[str, Any]
    calls: Annotated[list[dict[str, Any]], operator.add]
    fallbacks: Annotated[list[str], operator.add]
    outcome: dict[str, Any]


def failed_therapies(history: list[SessionOutcome]) -> list[str]:
    """Return the therapies that were in use in a session judged not effective."""
    failed: list[str] = []
    for outcome in history:
        if outcome.efficacy.verdict == "not_effective":
            failed += [t for t in outcome.previous_therapies if t not in failed]
    return failed


def _history(state: CourseState) -> list[SessionOutcome]:
    return [SessionOutcome.model_validate(h) for h in state.get("history", [])]


def _call_update(name: str, out: Any, key: str) -> dict[str, Any]:
    return {
        key: out.value.model_dump(mode="json"),
        "calls": [out.call.model_dump(mode="json")],
        "fallbacks": [name] if out.fallback else [],
    }


# --- nodes ---------------------------------------------------------------------------------------


def evaluate_efficacy(state: CourseState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Judge whether the therapy helped, from perceptions, transcript and past sessions (1 call)."""
    services = runtime.context.resolve()
    ctx = runtime.context
    plan = services.store.plan(ctx.patient_id, ctx.session_no)
    turns = services.store.turns(ctx.patient_id, ctx.session_no)
    history = services.store.outcomes(ctx.patient_id)
    lines = [
        f"Session {h.session_no}: {' + '.join(h.previous_therapies)} was "
        f"{h.efficacy.verdict.replace('_', ' ')} ({h.efficacy.reason}); then {h.decision.action} "
        f"to {' + '.join(h.decision.therapies)}."
        for h in history
    ]
    out = strategist.evaluate_efficacy(
        services.router,
        plan=plan,
        turns=turns,
        history=lines,
        prompts=services.prompts(plan.language),
    )
    return {
        "plan": plan.model_dump(mode="json"),
        "turns": [t.model_dump(mode="json") for t in turns],
        "history": [h.model_dump(mode="json") for h in history],
        **_call_update("efficacy", out, "efficacy"),
    }


def decide_therapy(state: CourseState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Keep, adjust or switch the therapy, never back to one that failed (1 call)."""
    services = runtime.context.resolve()
    plan = SessionPlan.model_validate(state["plan"])
    out = strategist.decide_therapy(
        services.router,
        plan=plan,
        efficacy=EfficacyReport.model_validate(state["efficacy"]),
        failed=failed_therapies(_history(state)),
        taxonomy=services.taxonomy,
        prompts=services.prompts(plan.language),
    )
    return _call_update("decision", out, "decision")


def update_formulation(state: CourseState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Update the DSM-5 / ICD-11-aligned working formulation (1 call)."""
    services = runtime.context.resolve()
    plan = SessionPlan.model_validate(state["plan"])
    out = diagnostician.update_formulation(
        services.router,
        previous=plan.formulation,
        turns=[TurnRecord.model_validate(t) for t in state["turns"]],
        intake=plan.presenting_problem,
        prompts=services.prompts(plan.language),
    )
    return _call_update("formulation", out, "formulation")


def consolidate_memory(state: CourseState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Write the session notes, then put summary, salient facts and decision in memory (1 call).

    Any turn whose memory write was lost (a crash right after its reply) is stored here too.
    """
    services = runtime.context.resolve()
    ctx = runtime.context
    plan = SessionPlan.model_validate(state["plan"])
    turns = [TurnRecord.model_validate(t) for t in state["turns"]]
    out = diagnostician.summarize_session(
        services.router, plan=plan, turns=turns, prompts=services.prompts(plan.language)
    )
    update = _call_update("summary", out, "summary")
    outcome = SessionOutcome(
        patient_id=ctx.patient_id,
        session_no=ctx.session_no,
        efficacy=EfficacyReport.model_validate(state["efficacy"]),
        decision=TherapyDecision.model_validate(state["decision"]),
        formulation=Formulation.model_validate(state["formulation"]),
        summary=out.value,
        previous_therapies=plan.therapies,
        calls=[CallUsage.model_validate(c) for c in [*state.get("calls", []), *update["calls"]]],
        fallbacks=[*state.get("fallbacks", []), *update["fallbacks"]],
    )
    if services.memory is not None:
        try:
            services.memory.backfill_turns(
                ctx.patient_id, ctx.session_no, [(t.turn, t.patient_text) for t in turns]
            )
            services.memory.consolidate(outcome)
        except Exception as exc:  # the outcome is what matters; memory can be rebuilt
            log.warning("memory consolidation failed for %s: %s", ctx.patient_id, exc)
    return {**update, "outcome": outcome.model_dump(mode="json")}


def set_next_focus(state: CourseState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Store the outcome (therapy, phase and focus for next time) and close the session (no call).

    The next session's plan is derived from this outcome when it starts.
    """
    services = runtime.context.resolve()
    outcome = SessionOutcome.model_validate(state["outcome"])
    services.store.close_session(
        outcome, None, owner=runtime.context.lease_owner, stale=owner_stale
    )
    return {"outcome": state["outcome"]}


# --- assembly ------------------------------------------------------------------------------------

builder = StateGraph(
    CourseState,
    context_schema=CounselContext,
    input_schema=CloseInput,
    output_schema=CloseOutput,
)
builder.add_node("evaluate_efficacy", evaluate_efficacy)
builder.add_node("decide_therapy", decide_therapy)
builder.add_node("update_formulation", update_formulation)
builder.add_node("consolidate_memory", consolidate_memory)
builder.add_node("set_next_focus", set_next_focus)
builder.add_edge(START, "evaluate_efficacy")
builder.add_edge("evaluate_efficacy", "decide_therapy")
builder.add_edge("decide_therapy", "update_formulation")
builder.add_edge("update_formulation", "consolidate_memory")
builder.add_edge("consolidate_memory", "set_next_focus")
builder.add_edge("set_next_focus", END)

graph = builder.compile()
"""The course graph without a checkpointer (for `langgraph dev`, which brings its own)."""
