"""The intra-session loop: screen → perceive ∥ recall → assess → plan → respond → record."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from theramind.agents import diagnostician, responder, strategist
from theramind.agents.heuristics import wants_to_end
from theramind.errors import InputError
from theramind.memory.recall import quoted_turns
from theramind.records import (
    CallUsage,
    MemoryItem,
    MemoryKind,
    Perception,
    RiskEvent,
    RiskScreen,
    SessionPlan,
    StrategyChoice,
    TurnRecord,
    is_elevated,
    max_risk,
)
from theramind.safety import CrisisResources, detect_injection
from theramind.safety import screen as screen_text
from theramind.services import CounselContext

log = logging.getLogger(__name__)
CRISIS_STRATEGY = "crisis_protocol"


RECENT_KEPT = 20
"""Turns a session's thread keeps (the most `limits.recent_turns_in_prompt` allows). Every turn
is in the patient store; the checkpointed state holds only what the next turn reads, so each
turn's checkpoint has the same size at turn 10 and at turn 1,000."""
USED_KEPT = 12
"""Strategies a session's thread remembers, most recent last."""


def per_turn(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Reducer for per-turn lists: `None` starts a new turn, lists append."""
    if right is None:
        return []
    return [*(left or []), *right]


def recent_kept(left: list[Any] | None, right: list[Any] | dict[str, Any] | None) -> list[Any]:
    """Reducer for the recent turns: append, keep the last `keep` (`RECENT_KEPT` by default).

    An update is a list, or `{"add": [...], "keep": n}` to bound the list to what is read.
    """
    keep = RECENT_KEPT
    if isinstance(right, dict):
        keep = max(1, min(RECENT_KEPT, int(right.get("keep", RECENT_KEPT))))
        right = right.get("add") or []
    return [*(left or []), *(right or [])][-keep:]


def recent_used(left: list[str] | None, right: list[str] | None) -> list[str]:
    """Reducer for the strategies used: append, keep the last `USED_KEPT`."""
    return [*(left or []), *(right or [])][-USED_KEPT:]


class TurnInput(TypedDict):
    """What a caller sends each turn (the plan only on a session's first turn)."""

    message: str
    plan: NotRequired[dict[str, Any]]
    stream: NotRequired[bool]


class TurnOutput(TypedDict):
    """What a turn returns: the stored turn record."""

    last: dict[str, Any]


class SessionState(TypedDict, total=False):
    """State of one session's thread; per-turn fields are overwritten each turn."""

    message: str
    plan: dict[str, Any]
    stream: bool
    screen: dict[str, Any]
    injection: bool
    perception: dict[str, Any]
    recalled: list[dict[str, Any]]
    risk_level: str
    crisis: bool
    closing: bool
    choice: dict[str, Any]
    reply: str
    reasoning: str
    replaced: list[str]
    calls: Annotated[list[dict[str, Any]], per_turn]
    fallbacks: Annotated[list[str], per_turn]
    risk_open: bool
    turns: Annotated[list[dict[str, Any]], recent_kept]
    """The last turns (bounded); the patient store has them all."""
    turn_count: int
    """How many turns the session has had (absent in threads from before it was kept)."""
    used: Annotated[list[str], recent_used]
    last: dict[str, Any]


def _turns(state: SessionState) -> list[TurnRecord]:
    return [TurnRecord.model_validate(t) for t in state.get("turns", [])]


def turn_count(state: Any) -> int:
    """How many turns a session's thread has had (older threads kept every turn)."""
    count = state.get("turn_count")
    return count if isinstance(count, int) else len(state.get("turns", []))


def _used(state: SessionState) -> list[str]:
    used = state.get("used")
    return list(used) if used is not None else [t["strategy"] for t in state.get("turns", [])]


def _plan(state: SessionState) -> SessionPlan:
    return SessionPlan.model_validate(state["plan"])


def safety_reminder(resources: CrisisResources) -> str:
    """The line added when a session with an open risk closes."""
    return (
        "Before we stop: if things feel unsafe before we meet again, please reach out to "
        f"{resources.resources[0].render()}, or {resources.emergency}."
    )


# --- nodes ---------------------------------------------------------------------------------------


def screen(state: SessionState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Check the message and screen it for risk before anything else (no model call)."""
    services = runtime.context.resolve()
    message = state.get("message")
    if not isinstance(message, str) or not message.strip():
        raise InputError("message must be a non-empty string")
    if len(message) > services.settings.limits.max_message_chars:
        raise InputError(
            f"message is {len(message)} characters; the limit is "
            f"{services.settings.limits.max_message_chars}"
        )
    update: dict[str, Any] = {"calls": None, "fallbacks": None, "replaced": []}
    if "plan" not in state:
        ctx = runtime.context
        update["plan"] = services.store.plan(ctx.patient_id, ctx.session_no).model_dump(mode="json")
    result = screen_text(
        message,
        languages=services.settings.safety.languages,
        config_dir=services.settings.config_dir_path,
    )
    update["screen"] = result.model_dump(mode="json")
    update["injection"] = detect_injection(message)
    return update


def perceive(state: SessionState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Diagnostician: perceive emotion, attitude, resistance, wish to end and risk (1 call)."""
    services = runtime.context.resolve()
    plan = _plan(state)
    out = diagnostician.perceive(
        services.router,
        message=state["message"],
        recent=_turns(state),
        formulation=plan.formulation,
        screen=RiskScreen.model_validate(state["screen"]),
        taxonomy=services.taxonomy,
        recent_limit=services.settings.limits.recent_turns_in_prompt,
        intake=plan.presenting_problem,
        formulation_tokens=services.settings.limits.formulation_tokens,
    )
    return {
        "perception": out.value.model_dump(mode="json"),
        "calls": [out.call.model_dump(mode="json")],
        "fallbacks": ["perceive"] if out.fallback else [],
    }


def recall(state: SessionState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Recall relevant memories of this patient from earlier turns and sessions (no call)."""
    services = runtime.context.resolve()
    if services.memory is None:
        return {"recalled": []}
    ctx = runtime.context
    focus = (state.get("plan") or {}).get("focus", "")
    quoted = quoted_turns(
        ctx.session_no,
        turn_count(state),
        services.settings.limits.recent_turns_in_prompt,
    )
    try:
        items = services.memory.recall(
            ctx.patient_id,
            state["message"],
            current_session=ctx.session_no,
            focus=focus,
            skip=quoted,
        )
    except Exception as exc:  # memory is an aid: a failure must not lose the turn
        log.warning("recall failed for %s: %s", ctx.patient_id, exc)
        return {"recalled": [], "fallbacks": ["recall"]}
    return {"recalled": [m.model_dump(mode="json") for m in items]}


def assess(state: SessionState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Combine both risk layers and decide whether this turn closes the session (no call).

    Explicit closing words close it at any time; a wish to end that only the model perceives
    counts from `limits.min_rounds` on, so a weak model cannot cut a session short.
    """
    services = runtime.context.resolve()
    perception = Perception.model_validate(state["perception"])
    level = max_risk(state["screen"]["level"], perception.risk_level)
    crisis = is_elevated(level)
    limits = services.settings.limits
    turn_no = turn_count(state) + 1
    explicit = wants_to_end(state["message"])
    perceived = perception.wants_to_end and turn_no >= limits.min_rounds
    return {
        "risk_level": level,
        "crisis": crisis,
        "risk_open": bool(state.get("risk_open")) or crisis,
        "closing": not crisis and (explicit or perceived or turn_no >= limits.max_rounds),
    }


def route_after_assess(state: SessionState) -> Literal["plan_turn", "respond"]:
    """A crisis goes straight to the crisis reply; otherwise the strategist plans."""
    return "respond" if state["crisis"] else "plan_turn"


def plan_turn(state: SessionState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Strategist: choose one response strategy for this turn (1 call)."""
    services = runtime.context.resolve()
    out = strategist.plan_turn(
        services.router,
        plan=_plan(state),
        perception=Perception.model_validate(state["perception"]),
        message=state["message"],
        recalled=[MemoryItem.model_validate(m) for m in state.get("recalled", [])],
        used=_used(state),
        risk_open=bool(state.get("risk_open")),
        taxonomy=services.taxonomy,
    )
    return {
        "choice": out.value.model_dump(mode="json"),
        "calls": [out.call.model_dump(mode="json")],
        "fallbacks": ["plan"] if out.fallback else [],
    }


def respond(state: SessionState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Responder: write the reply, or the crisis reply, and check it (1 call)."""
    services = runtime.context.resolve()
    limits = services.settings.limits
    plan = _plan(state)
    recent = _turns(state)
    if state["crisis"]:
        screen_result = RiskScreen.model_validate(state["screen"])
        out = responder.respond_crisis(
            services.router,
            plan=plan,
            message=state["message"],
            level=state["risk_level"],
            categories=screen_result.categories or ["suicidal_ideation"],
            resources=services.resources,
            recent=recent,
            recent_limit=limits.recent_turns_in_prompt,
        )
        choice = StrategyChoice(
            strategy=CRISIS_STRATEGY, rationale="Elevated risk: crisis protocol."
        )
    else:
        choice = StrategyChoice.model_validate(state["choice"])
        writer = get_stream_writer() if state.get("stream") else None
        out = responder.respond(
            services.router,
            plan=plan,
            message=state["message"],
            perception=Perception.model_validate(state["perception"]),
            strategy=choice.strategy,
            focus=choice.focus,
            recalled=[MemoryItem.model_validate(m) for m in state.get("recalled", [])],
            recent=recent,
            taxonomy=services.taxonomy,
            max_words=limits.reply_max_words,
            recent_limit=limits.recent_turns_in_prompt,
            closing=state["closing"],
            injection=bool(state.get("injection")),
            on_token=(lambda chunk: writer({"token": chunk})) if writer else None,
        )
        if state["closing"] and state.get("risk_open"):
            out.reply += " " + safety_reminder(services.resources)
    return {
        "choice": choice.model_dump(mode="json"),
        "reply": out.reply,
        "reasoning": out.reasoning,
        "replaced": out.replaced,
        "calls": [out.call.model_dump(mode="json")],
        "fallbacks": ["respond"] if out.call.fallback else [],
    }


def record(state: SessionState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Write the turn (and any risk event) in one transaction; remember the disclosure."""
    services = runtime.context.resolve()
    ctx = runtime.context
    plan = _plan(state)
    choice = StrategyChoice.model_validate(state["choice"])
    screen_result = RiskScreen.model_validate(state["screen"])
    perception = Perception.model_validate(state["perception"])
    turn_no = turn_count(state) + 1
    turn = TurnRecord(
        patient_id=ctx.patient_id,
        session_no=ctx.session_no,
        turn=turn_no,
        patient_text=state["message"],
        reply=state["reply"],
        reasoning=state.get("reasoning", ""),
        perception=perception,
        strategy=choice.strategy,
        strategy_rationale=choice.rationale,
        therapies=plan.therapies,
        phase=plan.phase,
        risk_level=state["risk_level"],  # type: ignore[arg-type]
        risk_screen=screen_result,
        crisis=state["crisis"],
        closing=state["closing"],
        recalled=[MemoryItem.model_validate(m) for m in state.get("recalled", [])],
        calls=[CallUsage.model_validate(c) for c in state.get("calls", [])],
        fallbacks=[*state.get("fallbacks", []), *state.get("replaced", [])],
    )
    event = None
    if state["crisis"]:
        from_screen = is_elevated(screen_result.level)
        from_model = is_elevated(perception.risk_level)
        event = RiskEvent(
            patient_id=ctx.patient_id,
            session_no=ctx.session_no,
            turn=turn_no,
            level=state["risk_level"],  # type: ignore[arg-type]
            source="both"
            if from_screen and from_model
            else "screen"
            if from_screen
            else "diagnostician",
            categories=screen_result.categories,
            evidence=[*screen_result.evidence, perception.risk_evidence][:4],
        )
    services.store.add_turn(turn, event, closing=state["closing"])
    if services.memory is not None:
        # Stored after the reply, off its path: recall skips the turns the prompt quotes anyway,
        # and the next read of this patient's memory waits for the write.
        entries: list[tuple[MemoryKind, str]] = [("disclosure", state["message"])]
        if event is not None:
            entries.append(("risk", f"risk {event.level}: {'; '.join(event.evidence)}"))
        try:
            services.memory.remember_soon(
                ctx.patient_id, entries, session_no=ctx.session_no, turn=turn_no
            )
        except Exception as exc:  # the turn is stored; memory is an aid
            log.warning("remember failed for %s: %s", ctx.patient_id, exc)
    dumped = turn.model_dump(mode="json")
    keep = max(1, services.settings.limits.recent_turns_in_prompt)
    return {
        "turns": {"add": [dumped], "keep": keep},
        "turn_count": turn_no,
        "used": [choice.strategy],
        "last": dumped,
    }


# --- assembly ------------------------------------------------------------------------------------

builder = StateGraph(
    SessionState,
    context_schema=CounselContext,
    input_schema=TurnInput,
    output_schema=TurnOutput,
)
builder.add_node("screen", screen)
builder.add_node("perceive", perceive)
builder.add_node("recall", recall)
builder.add_node("assess", assess)
builder.add_node("plan_turn", plan_turn)
builder.add_node("respond", respond)
builder.add_node("record", record)
builder.add_edge(START, "screen")
builder.add_edge("screen", "perceive")
builder.add_edge("screen", "recall")
builder.add_edge(["perceive", "recall"], "assess")
builder.add_conditional_edges("assess", route_after_assess)
builder.add_edge("plan_turn", "respond")
builder.add_edge("respond", "record")
builder.add_edge("record", END)

graph = builder.compile()
"""The session graph without a checkpointer (for `langgraph dev`, which brings its own)."""
