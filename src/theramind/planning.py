"""Plan a patient's next session: therapy, phase, focus, open risk and the opening words."""

from __future__ import annotations

import logging

from theramind.agents import strategist
from theramind.agents.intake import intake_facts, intake_focus
from theramind.opening import DEFAULT_LANGUAGE, opening_line
from theramind.records import CallUsage, PatientProfile, SessionPlan, TherapyAction
from theramind.services import Services

log = logging.getLogger(__name__)


def patient_language(profile: PatientProfile) -> str:
    """Return the language the patient is spoken to in (English when the profile has none)."""
    return str(getattr(profile, "language", None) or DEFAULT_LANGUAGE)


def seed_intake(services: Services, profile: PatientProfile) -> None:
    """Put the intake record in memory, so session 1 can recall what the patient came with."""
    if services.memory is None:
        return
    try:
        services.memory.remember_intake(profile.patient_id, intake_facts(profile))
    except Exception as exc:  # memory is an aid: the session starts without it
        log.warning("could not seed intake memories for %s: %s", profile.patient_id, exc)


def write_opening(services: Services, plan: SessionPlan, profile: PatientProfile) -> str:
    """Return the patient-facing opening of a plan, in the patient's language."""
    names = {t.id: t.name for t in services.taxonomy.therapies}
    return opening_line(
        plan,
        names,
        language=patient_language(profile),
        config_dir=services.settings.config_dir_path,
    )


def plan_next_session(services: Services, profile: PatientProfile) -> SessionPlan:
    """Derive the plan of the patient's next session.

    From the last outcome (therapy, phase, focus, formulation, the decision taken) or, before
    session 1, from the intake: the strategist's first choice of therapy, whose call the plan
    records in `opening_calls` (and the intake is seeded into memory).
    """
    store = services.store
    outcomes = store.outcomes(profile.patient_id)
    open_risks = store.risk_events(profile.patient_id, open_only=True)
    session_no = store.last_session_no(profile.patient_id) + 1
    previous: list[str] = []
    action: TherapyAction = "start"
    if outcomes:
        last = outcomes[-1]
        therapies, phase = last.decision.therapies, last.decision.phase
        focus, summary = last.summary.next_focus, last.summary.summary
        formulation = last.formulation
        previous, action = list(last.previous_therapies), last.decision.action
        opening_calls: list[CallUsage] = []
    else:
        out = strategist.initial_therapy(
            services.router, profile=profile, taxonomy=services.taxonomy
        )
        therapies, phase = out.value.therapies, out.value.phase
        focus, summary, formulation = intake_focus(profile), "", None
        opening_calls = [out.call]
        seed_intake(services, profile)
    plan = SessionPlan(
        patient_id=profile.patient_id,
        session_no=session_no,
        pseudonym=profile.pseudonym,
        presenting_problem=profile.presenting_problem,
        therapies=therapies,
        phase=phase,
        last_action=action,
        previous_therapies=previous,
        focus=focus,
        previous_summary=summary,
        formulation=formulation,
        open_risk=open_risks[-1] if open_risks else None,
        opening_calls=opening_calls,
    )
    plan.opening = write_opening(services, plan, profile)
    return plan
