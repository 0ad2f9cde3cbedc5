"""The diagnostician: perceives the patient each turn and keeps the working formulation."""

from __future__ import annotations

from collections.abc import Sequence

from theramind.agents.base import (
    AgentOutput,
    format_formulation,
    format_recent,
    run_structured,
)
from theramind.agents.heuristics import estimate_perception
from theramind.agents.intake import sentences
from theramind.agents.schemas import perception_schema
from theramind.config import Taxonomy
from theramind.llm import ModelRouter
from theramind.records import (
    Formulation,
    Perception,
    RiskScreen,
    SalientItem,
    SessionPlan,
    SessionSummary,
    TurnRecord,
)

PERCEIVE_SYSTEM = """\
You are the diagnostician in a counseling team. Read the patient's latest message in context and
record how the patient presents right now. Be literal. Any mention of wanting to die, suicide,
self-harm, or harming someone is risk: never mark it none.
Emotions: {emotions}.
<formulation>
{formulation}
</formulation>
<recent>
{recent}
</recent>"""

PERCEIVE_USER = "Patient's latest message:\n<message>\n{message}\n</message>"

FORMULATION_SYSTEM = """\
You are the diagnostician keeping a working case formulation for a counseling patient. Update it
from this session. Map symptoms to DSM-5 or ICD-11 criteria you are considering; these are
hypotheses to guide the counselor, not a diagnosis to tell the patient. Keep every item short.
<previous_formulation>
{formulation}
</previous_formulation>"""

SUMMARY_SYSTEM = """\
You are the diagnostician writing the notes of a counseling session with {name}. Summarise what
happened, list facts the patient disclosed that matter later (events, people, beliefs, goals,
homework), and say what the next session should address. Therapy: {therapies}; phase: {phase}."""

TRANSCRIPT_USER = "<transcript>\n{transcript}\n</transcript>"


def transcript(turns: Sequence[TurnRecord], max_chars: int = 6000) -> str:
    """Render a session's turns, keeping the most recent when over `max_chars`."""
    lines = [f"Patient: {t.patient_text}\nCounselor: {t.reply}" for t in turns]
    text = "\n".join(lines)
    return text[-max_chars:]


def perceive(
    router: ModelRouter,
    *,
    message: str,
    recent: Sequence[TurnRecord],
    formulation: Formulation | None,
    screen: RiskScreen,
    taxonomy: Taxonomy,
    recent_limit: int,
    intake: str = "",
    formulation_tokens: int | None = None,
) -> AgentOutput[Perception]:
    """Perceive the patient's latest message (one structured call).

    `intake` (the presenting problem) stands in for the formulation until the first exists;
    `formulation_tokens` bounds that block.
    """
    schema = perception_schema(tuple(taxonomy.emotion_ids))
    messages = [
        {
            "role": "system",
            "content": PERCEIVE_SYSTEM.format(
                emotions=", ".join(taxonomy.emotion_ids),
                formulation=format_formulation(
                    formulation, intake=intake, max_tokens=formulation_tokens
                ),
                recent=format_recent(recent, recent_limit),
            ),
        },
        {"role": "user", "content": PERCEIVE_USER.format(message=message)},
    ]
    out = run_structured(
        router,
        "diagnostician.perceive",
        messages,  # type: ignore[arg-type]
        schema,
        lambda: estimate_perception(message, screen, taxonomy.emotion_ids),
        max_tokens=200,
    )
    # Store the base record type, not the per-call schema subclass.
    out.value = Perception.model_validate(out.value.model_dump())
    return out


def update_formulation(
    router: ModelRouter,
    *,
    previous: Formulation | None,
    turns: Sequence[TurnRecord],
    intake: str = "",
) -> AgentOutput[Formulation]:
    """Update the working formulation from a finished session (one structured call)."""
    messages = [
        {
            "role": "system",
            "content": FORMULATION_SYSTEM.format(
                formulation=format_formulation(previous, intake=intake)
            ),
        },
        {"role": "user", "content": TRANSCRIPT_USER.format(transcript=transcript(turns))},
    ]
    return run_structured(
        router,
        "diagnostician.formulation",
        messages,  # type: ignore[arg-type]
        Formulation,
        lambda: previous or Formulation(presenting_problems=sentences(intake, 3)),
        max_tokens=400,
    )


def summarize_session(
    router: ModelRouter,
    *,
    plan: SessionPlan,
    turns: Sequence[TurnRecord],
) -> AgentOutput[SessionSummary]:
    """Write the session's notes, salient facts and next focus (one structured call)."""
    messages = [
        {
            "role": "system",
            "content": SUMMARY_SYSTEM.format(
                name=plan.pseudonym or "the patient",
                therapies=", ".join(plan.therapies),
                phase=plan.phase,
            ),
        },
        {"role": "user", "content": TRANSCRIPT_USER.format(transcript=transcript(turns))},
    ]

    def fallback() -> SessionSummary:
        said = [t.patient_text for t in turns][-3:]
        return SessionSummary(
            summary=("Patient said: " + " / ".join(said))[:600] if said else "No turns recorded.",
            salient=[SalientItem(kind="event", text=s[:200]) for s in said[-2:]],
            next_focus=plan.focus or "continue exploring the presenting problem",
        )

    return run_structured(
        router,
        "diagnostician.summary",
        messages,  # type: ignore[arg-type]
        SessionSummary,
        fallback,
        max_tokens=400,
    )
