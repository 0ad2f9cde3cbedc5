"""The strategist: picks one strategy per turn and chooses and revises the therapy over sessions."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean

from theramind.agents.base import (
    AgentOutput,
    format_formulation,
    run_structured,
    system_and_user,
)
from theramind.agents.diagnostician import transcript
from theramind.agents.schemas import (
    EfficacyVerdict,
    as_record,
    decision_schema,
    efficacy_schema,
    strategy_schema,
)
from theramind.agents.turn import TurnView
from theramind.config import Taxonomy
from theramind.llm import ModelRouter
from theramind.locales import PromptSet, english
from theramind.memory.recall import format_memories
from theramind.records import (
    EfficacyReport,
    PatientProfile,
    SessionPlan,
    StrategyChoice,
    TherapyDecision,
    TurnRecord,
)
from theramind.records import EfficacyVerdict as EfficacyLabel


def therapy_name(prompts: PromptSet, taxonomy: Taxonomy, therapy_id: str) -> str:
    """Return a therapy's name in the prompts' language (the taxonomy's when not translated)."""
    return prompts.get(f"taxonomy.therapies.{therapy_id}.name", taxonomy.therapy(therapy_id).name)


def strategy_text(prompts: PromptSet, taxonomy: Taxonomy, strategy_id: str) -> tuple[str, str]:
    """Return a strategy's name and description in the prompts' language."""
    s = taxonomy.strategy(strategy_id)
    key = f"taxonomy.strategies.{strategy_id}"
    return prompts.get(f"{key}.name", s.name), prompts.get(f"{key}.description", s.description)


def _catalog(
    taxonomy: Taxonomy, ids: Sequence[str] | None = None, prompts: PromptSet | None = None
) -> str:
    prompts = prompts or english()
    chosen = [t for t in taxonomy.therapies if ids is None or t.id in ids]
    return "\n".join(
        f"- {t.id}: {therapy_name(prompts, taxonomy, t.id)}. "
        + prompts.get(f"taxonomy.therapies.{t.id}.description", t.description)
        for t in chosen
    )


USED_IN_PROMPT = 8
"""The strategies used most recently that the plan prompt lists (the block stays bounded)."""


def allowed_strategies(
    taxonomy: Taxonomy, attitude: str, risk_open: bool, used: Sequence[str]
) -> list[str]:
    """Strategies allowed this turn: by attitude (or safe ones under risk), not the last used."""
    ids = [s.id for s in taxonomy.allowed_strategies(attitude, risk_open)]
    if used and len(ids) > 1 and used[-1] in ids:
        ids.remove(used[-1])
    return ids


def plan_turn(router: ModelRouter, turn: TurnView) -> AgentOutput[StrategyChoice]:
    """Choose the one strategy for the next reply (one structured call)."""
    prompts, taxonomy, plan, perception = turn.prompts, turn.taxonomy, turn.plan, turn.perception
    used, risk_open = list(turn.used), turn.risk_open
    flag_names = prompts.group("strategist.flags")
    allowed = allowed_strategies(taxonomy, perception.attitude, risk_open, used)
    flags = "".join(
        f", {flag_names[name]}"
        for name, on in (
            ("resisting", perception.resistance),
            ("changing_topic", perception.topic_deviation),
            ("wants_to_end", perception.wants_to_end),
            ("risk_open", risk_open),
        )
        if on
    )
    phase = next((p for p in taxonomy.phases if p.id == plan.phase), taxonomy.phases[0])
    allowed_lines = []
    for s in allowed:
        name, description = strategy_text(prompts, taxonomy, s)
        allowed_lines.append(f"- {s}: {name}. {description}")
    messages = system_and_user(
        prompts,
        "strategist.plan",
        {
            "therapies": ", ".join(therapy_name(prompts, taxonomy, t) for t in plan.therapies),
            "phase": phase.id,
            "phase_description": prompts.get(
                f"taxonomy.phases.{phase.id}.description", phase.description
            ),
            "emotion": perception.emotion,
            "intensity": perception.intensity,
            "attitude": perception.attitude,
            "flags": flags,
            "used": ", ".join(used[-USED_IN_PROMPT:]) or prompts.text("labels.none"),
            "allowed": "\n".join(allowed_lines),
        },
        {
            "focus": plan.focus or prompts.text("labels.open"),
            "memories": format_memories(turn.recalled) or prompts.text("labels.nothing_relevant"),
            "message": turn.message,
        },
    )

    def fallback() -> StrategyChoice:
        fresh = [s for s in allowed if s not in used] or allowed
        return StrategyChoice(
            strategy=fresh[len(used) % len(fresh)],
            rationale="Rule-based choice: the strategist model was unavailable.",
            focus=plan.focus[:200],
        )

    out = run_structured(
        router,
        "strategist.plan",
        messages,
        strategy_schema(tuple(allowed)),
        fallback,
        max_tokens=160,
    )
    out.value = as_record(out.value, StrategyChoice)
    return out


def initial_therapy(
    router: ModelRouter,
    *,
    profile: PatientProfile,
    taxonomy: Taxonomy,
    prompts: PromptSet | None = None,
) -> AgentOutput[TherapyDecision]:
    """Choose the first session's therapy from the patient's record (one structured call)."""
    first = taxonomy.phase_ids[0]
    schema = decision_schema(("start",), tuple(taxonomy.therapy_ids), (first,))
    prompts = prompts or english()
    none = prompts.text("labels.none")
    messages = system_and_user(
        prompts,
        "strategist.intake",
        {"catalog": _catalog(taxonomy, prompts=prompts)},
        {
            "age": str(profile.age) if profile.age else none,
            "category": profile.category or none,
            "history": profile.history or none,
            "problem": profile.presenting_problem or none,
        },
    )

    def fallback() -> TherapyDecision:
        suited = [t.id for t in taxonomy.therapies if profile.category in t.suits]
        return TherapyDecision(
            action="start",
            therapies=[(suited or taxonomy.therapy_ids)[0]],
            phase=first,
            reason="Rule-based choice from the problem category (model unavailable).",
        )

    out = run_structured(
        router,
        "strategist.intake",
        messages,
        schema,
        fallback,
        max_tokens=300,
    )
    out.value = as_record(out.value, TherapyDecision)
    return out


def efficacy_signals(turns: Sequence[TurnRecord]) -> dict[str, float]:
    """Measure a session from its perceptions: intensity trend, attitude and resistance ratios."""
    if not turns:
        return {"turns": 0.0}
    intensity = [t.perception.intensity for t in turns]
    half = max(1, len(intensity) // 2)
    return {
        "turns": float(len(turns)),
        "mean_intensity": round(fmean(intensity), 3),
        "intensity_trend": round(fmean(intensity[-half:]) - fmean(intensity[:half]), 3),
        "positive_ratio": round(
            sum(t.perception.attitude == "positive" for t in turns) / len(turns), 3
        ),
        "resistance_ratio": round(sum(t.perception.resistance for t in turns) / len(turns), 3),
    }


def rule_verdict(signals: dict[str, float]) -> EfficacyReport:
    """Judge efficacy from the signals alone (the documented fallback)."""
    if not signals.get("turns"):
        return EfficacyReport(verdict="partially_effective", reason="No turns to judge.")
    trend = max(0.0, min(1.0, 0.5 - 2 * signals["intensity_trend"]))
    score = 0.5 * signals["positive_ratio"] + 0.3 * (1 - signals["resistance_ratio"]) + 0.2 * trend
    verdict: EfficacyLabel = (
        "effective"
        if score >= 0.65
        else "partially_effective"
        if score >= 0.45
        else "not_effective"
    )
    return EfficacyReport(
        verdict=verdict,
        reason=f"Rule-based from signals (score {score:.2f}).",
    )


def evaluate_efficacy(
    router: ModelRouter,
    *,
    plan: SessionPlan,
    turns: Sequence[TurnRecord],
    history: Sequence[str],
    prompts: PromptSet | None = None,
) -> AgentOutput[EfficacyReport]:
    """Judge whether the session's therapy had an effect (one structured call)."""
    prompts = prompts or english()
    signals = efficacy_signals(turns)
    messages = system_and_user(
        prompts,
        "strategist.efficacy",
        {
            "therapies": ", ".join(plan.therapies),
            "phase": plan.phase,
            "signals": ", ".join(f"{k}={v}" for k, v in signals.items()),
        },
        {
            "history": "\n".join(history[-4:]) or prompts.text("labels.first_session"),
            "transcript": transcript(turns, prompts=prompts),
        },
    )

    def fallback() -> EfficacyVerdict:
        rule = rule_verdict(signals)
        return EfficacyVerdict(verdict=rule.verdict, reason=rule.reason)

    out = run_structured(
        router,
        "strategist.efficacy",
        messages,
        efficacy_schema(),
        fallback,
        max_tokens=200,
    )
    report = EfficacyReport(verdict=out.value.verdict, reason=out.value.reason, signals=signals)
    return AgentOutput(report, out.call)


def decision_space(
    verdict: str, current: Sequence[str], failed: Sequence[str], taxonomy: Taxonomy
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the actions and therapies a decision may use after this verdict."""
    catalog = taxonomy.therapy_ids
    untried = [t for t in catalog if t not in failed]
    if verdict == "effective":
        return ("keep",), tuple(current)
    if verdict == "partially_effective":
        return ("keep", "adjust"), tuple(untried or catalog)
    fresh = [t for t in untried if t not in current] or [t for t in catalog if t not in current]
    return ("switch",), tuple(fresh)


def decide_therapy(
    router: ModelRouter,
    *,
    plan: SessionPlan,
    efficacy: EfficacyReport,
    failed: Sequence[str],
    taxonomy: Taxonomy,
    prompts: PromptSet | None = None,
) -> AgentOutput[TherapyDecision]:
    """Keep, adjust or switch the therapy after a session (one structured call).

    The allowed actions follow the evaluation: keep when effective, keep or adjust when partly
    effective, switch (to an approach not already failed) when not effective.
    """
    actions, therapies = decision_space(efficacy.verdict, plan.therapies, failed, taxonomy)
    phase_ids = taxonomy.phase_ids
    phases = tuple(dict.fromkeys([plan.phase, taxonomy.next_phase(plan.phase)]))
    prompts = prompts or english()
    messages = system_and_user(
        prompts,
        "strategist.decision",
        {
            "therapies": ", ".join(plan.therapies),
            "verdict": efficacy.verdict,
            "failed": ", ".join(failed) or prompts.text("labels.none"),
            "actions": ", ".join(actions),
            "catalog": _catalog(taxonomy, therapies, prompts),
            "phases": ", ".join(phase_ids),
            "phase": plan.phase,
        },
        {
            "reason": efficacy.reason,
            "formulation": format_formulation(
                plan.formulation, intake=plan.presenting_problem, prompts=prompts
            ),
        },
    )

    def fallback() -> TherapyDecision:
        if actions == ("switch",):
            return TherapyDecision(
                action="switch",
                therapies=[therapies[0]],
                phase=plan.phase,
                reason=f"Rule-based: {', '.join(plan.therapies)} showed no effect.",
                evidence=[efficacy.reason[:120]],
            )
        nxt = phases[-1] if efficacy.verdict == "effective" else plan.phase
        return TherapyDecision(
            action="keep",
            therapies=list(plan.therapies),
            phase=nxt,
            reason=f"Rule-based: the therapy was {efficacy.verdict.replace('_', ' ')}.",
            evidence=[efficacy.reason[:120]],
        )

    out = run_structured(
        router,
        "strategist.decision",
        messages,
        decision_schema(actions, therapies, phases),
        fallback,
        max_tokens=300,
    )
    decision = as_record(out.value, TherapyDecision)
    if decision.action == "keep":
        decision.therapies = list(plan.therapies)
    elif decision.action == "adjust" and not set(decision.therapies) & set(plan.therapies):
        decision.therapies = [plan.therapies[0], decision.therapies[0]]
    out.value = decision
    return out
