"""The diagnostician: perceives the patient each turn and keeps the working formulation."""

from __future__ import annotations

from collections.abc import Sequence

from theramind.agents.base import (
    AgentOutput,
    format_formulation,
    format_recent,
    run_structured,
    system_and_user,
)
from theramind.agents.heuristics import estimate_perception
from theramind.agents.intake import sentences
from theramind.agents.schemas import as_record, perception_schema
from theramind.agents.turn import TurnView
from theramind.llm import ModelRouter
from theramind.locales import PromptSet, english
from theramind.records import (
    Formulation,
    Perception,
    SalientItem,
    SessionPlan,
    SessionSummary,
    TurnRecord,
)


def transcript(
    turns: Sequence[TurnRecord], max_chars: int = 6000, prompts: PromptSet | None = None
) -> str:
    """Render a session's turns, keeping the most recent when over `max_chars`."""
    labels = (prompts or english()).group("labels")
    patient, counselor = labels["patient"] + labels["colon"], labels["counselor"] + labels["colon"]
    lines = [f"{patient}{t.patient_text}\n{counselor}{t.reply}" for t in turns]
    text = "\n".join(lines)
    return text[-max_chars:]


def perceive(router: ModelRouter, turn: TurnView) -> AgentOutput[Perception]:
    """Perceive the patient's latest message (one structured call).

    The plan's presenting problem stands in for the formulation until the first exists;
    `limits.formulation_tokens` bounds that block.
    """
    prompts, taxonomy, plan = turn.prompts, turn.taxonomy, turn.plan
    schema = perception_schema(tuple(taxonomy.emotion_ids))
    messages = system_and_user(
        prompts,
        "diagnostician.perceive",
        {"emotions": ", ".join(taxonomy.emotion_ids)},
        {
            "formulation": format_formulation(
                plan.formulation,
                intake=plan.presenting_problem,
                max_tokens=turn.limits.formulation_tokens,
                prompts=prompts,
            ),
            "recent": format_recent(turn.recent, turn.limits.recent_turns_in_prompt, prompts),
            "message": turn.message,
        },
    )
    screen = turn.screen
    out = run_structured(
        router,
        "diagnostician.perceive",
        messages,
        schema,
        lambda: estimate_perception(turn.message, screen, taxonomy.emotion_ids),
        max_tokens=200,
    )
    out.value = as_record(out.value, Perception)
    return out


def update_formulation(
    router: ModelRouter,
    *,
    previous: Formulation | None,
    turns: Sequence[TurnRecord],
    intake: str = "",
    prompts: PromptSet | None = None,
) -> AgentOutput[Formulation]:
    """Update the working formulation from a finished session (one structured call)."""
    prompts = prompts or english()
    messages = system_and_user(
        prompts,
        "diagnostician.formulation",
        {},
        {
            "formulation": format_formulation(previous, intake=intake, prompts=prompts),
            "transcript": transcript(turns, prompts=prompts),
        },
    )
    return run_structured(
        router,
        "diagnostician.formulation",
        messages,
        Formulation,
        lambda: previous or Formulation(presenting_problems=sentences(intake, 3)),
        max_tokens=400,
    )


def summarize_session(
    router: ModelRouter,
    *,
    plan: SessionPlan,
    turns: Sequence[TurnRecord],
    prompts: PromptSet | None = None,
) -> AgentOutput[SessionSummary]:
    """Write the session's notes, salient facts and next focus (one structured call)."""
    prompts = prompts or english()
    messages = system_and_user(
        prompts,
        "diagnostician.summary",
        {"therapies": ", ".join(plan.therapies), "phase": plan.phase},
        {
            "name": plan.pseudonym or prompts.text("labels.the_patient"),
            "transcript": transcript(turns, prompts=prompts),
        },
    )

    def fallback() -> SessionSummary:
        said = [t.patient_text for t in turns][-3:]
        texts = prompts.group("diagnostician")
        return SessionSummary(
            summary=(texts["summary_fallback_said"] + " / ".join(said))[:600]
            if said
            else texts["summary_fallback_empty"],
            salient=[SalientItem(kind="event", text=s[:200]) for s in said[-2:]],
            next_focus=plan.focus or texts["summary_fallback_focus"],
        )

    return run_structured(
        router,
        "diagnostician.summary",
        messages,
        SessionSummary,
        fallback,
        max_tokens=400,
    )
