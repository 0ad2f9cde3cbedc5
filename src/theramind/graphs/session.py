"""The intra-session loop: screen → recall → perceive → assess → plan → respond → record."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from theramind.agents import diagnostician, responder, strategist
from theramind.agents.heuristics import wants_to_end
from theramind.graphs.context import TurnContext, call_update, dump
from theramind.graphs.context import risk_is_open as risk_is_open
from theramind.graphs.context import turn_count as turn_count
from theramind.language_id import detect_language
from theramind.lease import owner_stale
from theramind.memory.recall import quoted_turns
from theramind.planning import session_plan
from theramind.records import (
    MemoryKind,
    RiskEvent,
    SessionPlan,
    StrategyChoice,
    TurnRecord,
    is_elevated,
    max_risk,
)
from theramind.safety import detect_injection, safety_reminder
from theramind.safety import screen as screen_text
from theramind.safety.patterns import has_patterns
from theramind.safety.screen import with_diagnostician
from theramind.services import CounselContext, Services
from theramind.validation import validate_message

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


KEPT_FIELDS = ("turn", "patient_text", "reply", "strategy")
"""What the thread keeps of a recent turn: what prompts quote and what numbering needs. The
whole record is in the patient store (and in `last`); a thread checkpointed every turn need not
carry three more copies of it."""


def kept_turn(record: dict[str, Any]) -> dict[str, Any]:
    """Return what the thread keeps of a dumped turn record."""
    return {k: record[k] for k in KEPT_FIELDS if k in record}


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
    """The last turns (bounded, `KEPT_FIELDS` of each); the patient store has them all."""
    turn_count: int
    """How many turns the session has had (absent in threads from before it was kept)."""
    used: Annotated[list[str], recent_used]
    last: dict[str, Any]


def screen_languages(services: Services, language: str) -> list[str]:
    """The pattern languages to screen with: the configured ones and the session's, if any."""
    languages = list(dict.fromkeys([*services.settings.safety.languages, language]))
    config_dir = services.settings.config_dir_path
    return [lang for lang in languages if has_patterns(lang, config_dir)] or ["en"]


def _settle_language(
    plan: dict[str, Any], message: str, services: Services, first_turn: bool
) -> dict[str, Any] | None:
    """On the first turn of a patient whose language nothing has told yet, guess it and store it."""
    if not first_turn or plan.get("language_source") != "default":
        return None
    found = detect_language(message)
    if not found:
        return None
    settled = SessionPlan.model_validate(plan).model_copy(
        update={"language": found, "language_source": "message"}
    )
    try:
        services.store.set_language(settled)
    except Exception as exc:  # the turn goes on in the detected language; the store may retry
        log.warning("could not store the detected language of %s: %s", settled.patient_id, exc)
    return dump(settled)


# --- nodes ---------------------------------------------------------------------------------------


def screen(state: SessionState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Check the message and screen it for risk before anything else (no model call)."""
    turn = TurnContext(state, runtime)
    services = turn.services
    message = validate_message(state.get("message"), turn.limits.max_message_chars)
    update: dict[str, Any] = {"calls": None, "fallbacks": None, "replaced": []}
    plan = state.get("plan")
    if plan is None:
        ctx = turn.counsel
        plan = dump(session_plan(services, ctx.patient_id, ctx.session_no, ctx.profile))
        update["plan"] = plan
    settled = _settle_language(plan, message, services, not state.get("turns"))
    if settled is not None:
        plan = update["plan"] = settled
    result = screen_text(
        message,
        languages=screen_languages(services, str(plan.get("language") or "en")),
        config_dir=services.settings.config_dir_path,
        semantic=services.settings.safety.semantic,
    )
    update["screen"] = dump(result)
    update["injection"] = detect_injection(message)
    return update


def perceive(state: SessionState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Diagnostician: perceive emotion, attitude, resistance, wish to end and risk (1 call)."""
    turn = TurnContext(state, runtime)
    return call_update("perceive", diagnostician.perceive(turn.services.router, turn), "perception")


def recall(state: SessionState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Recall relevant memories of this patient from earlier turns and sessions (no call)."""
    turn = TurnContext(state, runtime)
    memory = turn.services.memory
    if memory is None:
        return {"recalled": []}
    focus = (state.get("plan") or {}).get("focus", "")
    quoted = quoted_turns(turn.session_no, turn.turn_no - 1, turn.limits.recent_turns_in_prompt)
    try:
        items = memory.recall(
            turn.patient_id,
            turn.message,
            current_session=turn.session_no,
            focus=focus,
            skip=quoted,
        )
    except Exception as exc:  # memory is an aid: a failure must not lose the turn
        log.warning("recall failed for %s: %s", turn.patient_id, exc)
        return {"recalled": [], "fallbacks": ["recall"]}
    return {"recalled": [dump(m) for m in items]}


def assess(state: SessionState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Combine both risk layers and decide whether this turn closes the session (no call).

    A crisis turn never closes. While a risk is open (raised this session or carried over from
    the last one, not yet followed up) only the patient's explicit closing words close the
    session: neither a wish to end that only the model perceives nor the round cap does.
    Otherwise explicit closing words close it at any time, a perceived wish to end from
    `limits.min_rounds` on (so a weak model cannot cut a session short), and the round cap.
    """
    turn = TurnContext(state, runtime)
    perception = turn.perception
    level = max_risk(state["screen"]["level"], perception.risk_level)
    crisis = is_elevated(level)
    limits = turn.limits
    turn_no = turn.turn_no
    explicit = wants_to_end(turn.message)
    perceived = perception.wants_to_end and turn_no >= limits.min_rounds
    capped = turn_no >= limits.max_rounds
    at_risk = crisis or turn.risk_open
    if crisis:
        closing = False
    elif at_risk:
        closing = explicit
        if (perceived or capped) and not explicit:
            log.info(
                "turn %d of %s: a risk is open, so only the patient's closing words end it",
                turn_no,
                turn.patient_id,
            )
    else:
        closing = explicit or perceived or capped
    return {
        "risk_level": level,
        "crisis": crisis,
        "risk_open": bool(state.get("risk_open")) or crisis,
        "closing": closing,
    }


def route_after_assess(state: SessionState) -> Literal["plan_turn", "respond"]:
    """A crisis goes straight to the crisis reply; otherwise the strategist plans."""
    return "respond" if state["crisis"] else "plan_turn"


def plan_turn(state: SessionState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Strategist: choose one response strategy for this turn (1 call)."""
    turn = TurnContext(state, runtime)
    return call_update("plan", strategist.plan_turn(turn.services.router, turn), "choice")


def respond(state: SessionState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Responder: write the reply, or the crisis reply, and check it (1 call)."""
    turn = TurnContext(state, runtime)
    services, prompts = turn.services, turn.prompts
    if state["crisis"]:
        out = responder.respond_crisis(services.router, turn)
        choice = StrategyChoice(
            strategy=CRISIS_STRATEGY, rationale="Elevated risk: crisis protocol."
        )
    else:
        choice = turn.choice
        writer = get_stream_writer() if state.get("stream") else None
        out = responder.respond(
            services.router,
            turn,
            on_token=(lambda chunk: writer({"token": chunk})) if writer else None,
        )
        if turn.closing and turn.risk_open:
            reminder = " " + safety_reminder(services.resources, prompts)
            out.reply += reminder
            if writer is not None:
                writer({"token": reminder})
    return {
        "choice": dump(choice),
        "reply": out.reply,
        "reasoning": out.reasoning,
        "replaced": out.replaced,
        "calls": [dump(out.call)],
        "fallbacks": ["respond"] if out.call.fallback else [],
    }


def record(state: SessionState, runtime: Runtime[CounselContext]) -> dict[str, Any]:
    """Write the turn (and any risk event) in one transaction; remember the disclosure."""
    node = TurnContext(state, runtime)
    services, ctx, plan, prompts = node.services, node.counsel, node.plan, node.prompts
    choice, perception = node.choice, node.perception
    screen_result = with_diagnostician(
        node.screen, perception, fallback="perceive" in state.get("fallbacks", [])
    )
    turn_no = node.turn_no
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
        risk_level=node.risk_level,
        risk_screen=screen_result,
        crisis=state["crisis"],
        closing=state["closing"],
        injection=node.injection,
        language=prompts.language,
        recalled=node.recalled,
        calls=node.calls,
        fallbacks=[
            *state.get("fallbacks", []),
            *state.get("replaced", []),
            *([prompts.marker] if prompts.marker else []),
        ],
    )
    event = None
    if state["crisis"]:
        from_screen = is_elevated(screen_result.level)
        from_model = is_elevated(perception.risk_level)
        event = RiskEvent(
            patient_id=ctx.patient_id,
            session_no=ctx.session_no,
            turn=turn_no,
            level=node.risk_level,
            source="both"
            if from_screen and from_model
            else "screen"
            if from_screen
            else "diagnostician",
            categories=screen_result.categories,
            evidence=[*screen_result.evidence, perception.risk_evidence][:4],
        )
    services.store.add_turn(
        turn,
        event,
        closing=state["closing"],
        owner=ctx.lease_owner,
        ttl_s=services.settings.storage.lease_ttl_s,
        stale=owner_stale,
    )
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
    dumped = dump(turn)
    keep = max(1, node.limits.recent_turns_in_prompt)
    return {
        "turns": {"add": [kept_turn(dumped)], "keep": keep},
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
# One node after another, on the caller's thread. As parallel branches, perceive and recall
# made LangGraph start two pool threads every turn (a 287-turn benchmark level started about
# 280 threads more), to overlap only recall's few milliseconds with a model call of hundreds.
builder.add_edge("screen", "recall")
builder.add_edge("recall", "perceive")
builder.add_edge("perceive", "assess")
builder.add_conditional_edges("assess", route_after_assess)
builder.add_edge("plan_turn", "respond")
builder.add_edge("respond", "record")
builder.add_edge("record", END)

graph = builder.compile()
"""The session graph without a checkpointer (for `langgraph dev`, which brings its own)."""
