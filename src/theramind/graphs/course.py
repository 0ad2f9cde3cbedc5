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
from theramind.graphs.context import CloseContext, call_update, dump
from theramind.lease import owner_stale
from theramind.records import (
    CallUsage,
    SessionOutcome,
)
from theramind.services import CounselContext

log = logging.getLogger(__name__)


class CloseInput(TypedDict, total=False):
    """Nothing is required: the graph reads the session from the patient store."""


class CloseOutput(TypedDict):
    """The stored outcome."""

    outcome: dict[str, Any]


HISTORY_IN_PROMPT = 6
"""Earlier sessions the efficacy prompt describes (the most recent), however long the course."""


class CourseState(TypedDict, total=False):
    """State of one session close: what each step decided, never the turns or past outcomes.

    The patient store holds those; each step reads them, so a close checkpoints the same few
    kilobytes at session 200 as at session 2.
    """

    plan: dict[str, Any]
    failed: list[str]
    turns_seen: int
    """How many stored turns the close judged: a resumed close over more is started over."""
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


# --- nodes ---------------------------------------------------------------------------------------


def evaluate_efficacy(state: CourseState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Judge whether the therapy helped, from perceptions, transcript and past sessions (1 call)."""
    close = CloseContext(state, runtime)
    services = close.services
    plan = close.plan = services.store.plan(close.patient_id, close.session_no)
    turns = close.turns
    history = services.store.outcomes(close.patient_id)
    lines = [
        f"Session {h.session_no}: {' + '.join(h.previous_therapies)} was "
        f"{h.efficacy.verdict.replace('_', ' ')} ({h.efficacy.reason}); then {h.decision.action} "
        f"to {' + '.join(h.decision.therapies)}."
        for h in history[-HISTORY_IN_PROMPT:]
    ]
    out = strategist.evaluate_efficacy(
        services.router,
        plan=plan,
        turns=turns,
        history=lines,
        prompts=close.prompts,
    )
    return {
        "plan": dump(plan),
        "failed": failed_therapies(history),
        "turns_seen": len(turns),
        **call_update("efficacy", out, "efficacy"),
    }


def decide_therapy(state: CourseState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Keep, adjust or switch the therapy, never back to one that failed (1 call)."""
    close = CloseContext(state, runtime)
    out = strategist.decide_therapy(
        close.services.router,
        plan=close.plan,
        efficacy=close.efficacy,
        failed=list(state.get("failed", [])),
        taxonomy=close.services.taxonomy,
        prompts=close.prompts,
    )
    return call_update("decision", out, "decision")


def update_formulation(state: CourseState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Update the DSM-5 / ICD-11-aligned working formulation (1 call)."""
    close = CloseContext(state, runtime)
    out = diagnostician.update_formulation(
        close.services.router,
        previous=close.plan.formulation,
        turns=close.turns,
        intake=close.plan.presenting_problem,
        prompts=close.prompts,
    )
    return call_update("formulation", out, "formulation")


def consolidate_memory(state: CourseState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Write the session notes, then put summary, salient facts and decision in memory (1 call).

    Any turn whose memory write was lost (a crash right after its reply) is stored here too.
    """
    close = CloseContext(state, runtime)
    services, ctx, plan, turns = close.services, close.counsel, close.plan, close.turns
    out = diagnostician.summarize_session(
        services.router, plan=plan, turns=turns, prompts=close.prompts
    )
    update = call_update("summary", out, "summary")
    outcome = SessionOutcome(
        patient_id=ctx.patient_id,
        session_no=ctx.session_no,
        efficacy=close.efficacy,
        decision=close.decision,
        formulation=close.formulation,
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
    return {**update, "outcome": dump(outcome)}


def set_next_focus(state: CourseState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Store the outcome (therapy, phase and focus for next time) and close the session (no call).

    The next session's plan is derived from this outcome when it starts.
    """
    services = runtime.context.resolve()
    outcome = SessionOutcome.model_validate(state["outcome"])
    services.store.close_session(outcome, owner=runtime.context.lease_owner, stale=owner_stale)
    return {"outcome": state["outcome"]}


# --- assembly ------------------------------------------------------------------------------------

builder = StateGraph(
    CourseState,
    context_schema=CounselContext,
    input_schema=CloseInput,
    output_schema=CloseOutput,
)
builder.add_sequence(
    [evaluate_efficacy, decide_therapy, update_formulation, consolidate_memory, set_next_focus]
)
builder.add_edge(START, "evaluate_efficacy")
builder.add_edge("set_next_focus", END)

graph = builder.compile()
"""The course graph without a checkpointer (for `langgraph dev`, which brings its own)."""
