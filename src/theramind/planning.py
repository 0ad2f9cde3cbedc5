"""Plan a patient's next session: therapy, phase, focus, open risk and the opening words."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from theramind.agents import strategist
from theramind.agents.intake import intake_facts, intake_focus
from theramind.errors import InputError, SessionStateError, UnknownPatientError
from theramind.language_id import intake_language
from theramind.opening import DEFAULT_LANGUAGE, opening_line
from theramind.records import CallUsage, PatientProfile, SessionPlan, TherapyAction
from theramind.services import Services

log = logging.getLogger(__name__)


def patient_language(profile: PatientProfile) -> str:
    """Return the language the patient is spoken to in (English when the profile has none)."""
    return str(getattr(profile, "language", None) or DEFAULT_LANGUAGE)


def seed_intake(
    services: Services, profile: PatientProfile, language: str = DEFAULT_LANGUAGE
) -> None:
    """Put the intake record in memory, so session 1 can recall what the patient came with."""
    if services.memory is None:
        return
    try:
        facts = intake_facts(profile, services.prompts(language))
        services.memory.remember_intake(profile.patient_id, facts)
    except Exception as exc:  # memory is an aid: the session starts without it
        log.warning("could not seed intake memories for %s: %s", profile.patient_id, exc)


def write_opening(services: Services, plan: SessionPlan, profile: PatientProfile) -> str:
    """Return the patient-facing opening of a plan, in the plan's (the patient's) language."""
    names = {t.id: t.name for t in services.taxonomy.therapies}
    return opening_line(
        plan,
        names,
        language=plan.language or patient_language(profile),
        config_dir=services.settings.config_dir_path,
    )


def plan_next_session(services: Services, profile: PatientProfile) -> SessionPlan:
    """Derive the plan of the patient's next session.

    From the last outcome (therapy, phase, focus, formulation, the decision taken) or, before
    session 1, from the intake: the strategist's first choice of therapy, whose call the plan
    records in `opening_calls` (and the intake is seeded into memory).
    """
    store = services.store
    language, source = intake_language(profile)
    if source == "intake":  # detected once, then kept as the patient's language
        profile = profile.model_copy(update={"language": language})
        store.upsert_patient(profile)
    language = language or DEFAULT_LANGUAGE
    outcomes = store.outcomes(profile.patient_id)
    open_risks = store.risk_events(profile.patient_id, open_only=True)
    session_no = store.last_session_no(profile.patient_id) + 1
    previous: list[str] = []
    action: TherapyAction = "start"
    if outcomes:
        last = outcomes[-1]
        therapies, phase = last.decision.therapies, last.decision.phase
        focus = last.summary.next_focus
        formulation = last.formulation
        previous, action = list(last.previous_therapies), last.decision.action
        opening_calls: list[CallUsage] = []
    else:
        prompts = services.prompts(language)
        out = strategist.initial_therapy(
            services.router, profile=profile, taxonomy=services.taxonomy, prompts=prompts
        )
        therapies, phase = out.value.therapies, out.value.phase
        focus, formulation = intake_focus(profile, prompts), None
        opening_calls = [out.call]
        seed_intake(services, profile, language)
    plan = SessionPlan(
        patient_id=profile.patient_id,
        session_no=session_no,
        pseudonym=profile.pseudonym,
        presenting_problem=profile.presenting_problem,
        language=language,
        language_source=source,
        therapies=therapies,
        phase=phase,
        last_action=action,
        previous_therapies=previous,
        focus=focus,
        formulation=formulation,
        open_risk=open_risks[-1] if open_risks else None,
        opening_calls=opening_calls,
    )
    plan.opening = write_opening(services, plan, profile)
    return plan


def _register(services: Services, patient_id: str, profile: Mapping[str, Any]) -> None:
    try:
        registered = PatientProfile.model_validate(dict(profile))
    except ValidationError as exc:
        raise InputError(f"context.profile is not a valid patient profile: {exc}") from exc
    if registered.patient_id != patient_id:
        raise InputError(
            f"context.profile.patient_id {registered.patient_id!r} does not match "
            f"context.patient_id {patient_id!r}"
        )
    services.store.upsert_patient(registered)


def session_plan(
    services: Services,
    patient_id: str,
    session_no: int,
    profile: Mapping[str, Any] | None = None,
) -> SessionPlan:
    """Return the plan of a session, starting it first when it is the patient's next one.

    For clients of a graph server (`langgraph dev`), which cannot call `start_session`: the
    first turn of a new session starts it, and a `profile` registers an unknown patient. The
    plan comes from `plan_next_session` (a `TheraMind.next_plan` override is not consulted).

    Raises:
        UnknownPatientError: the patient is unknown and no profile was given.
        SessionStateError: `session_no` is neither a stored session nor the next one.
        InputError: the profile is invalid or names another patient.
    """
    store = services.store
    if profile is not None:
        _register(services, patient_id, profile)
    try:
        return store.plan(patient_id, session_no)
    except SessionStateError:
        pass
    if not store.has_patient(patient_id):
        raise UnknownPatientError(
            f"unknown patient {patient_id!r}: send their profile with the first turn, "
            f"context={{'patient_id': {patient_id!r}, 'session_no': 1, 'profile': "
            f"{{'patient_id': {patient_id!r}, 'pseudonym': ..., 'presenting_problem': ...}}}}, "
            "or register them with TheraMind.register_patient first"
        )
    unfinished = store.open_session(patient_id)
    if unfinished is not None:
        raise SessionStateError(
            f"patient {patient_id!r} has no session {session_no}; session {unfinished[0]} is "
            f"still {unfinished[1]}: send session_no={unfinished[0]} to go on with it"
        )
    expected = store.last_session_no(patient_id) + 1
    if session_no != expected:
        raise SessionStateError(
            f"patient {patient_id!r} has no session {session_no}; their next session is "
            f"{expected}: send session_no={expected} to start it"
        )
    plan = plan_next_session(services, store.patient(patient_id))
    store.create_session(plan)
    log.info("started session %d of %s from the graph", session_no, patient_id)
    return plan
