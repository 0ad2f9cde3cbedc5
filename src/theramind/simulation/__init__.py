"""Simulated patients, counselors under test, the session orchestrator and the experiment runner."""

from __future__ import annotations

from theramind.lazy import lazy_exports

_EXPORTS: dict[str, tuple[str, ...]] = {
    "theramind.simulation.profiles": (
        "SimProfile",
        "load_profile",
        "load_profiles",
        "select_profiles",
    ),
    "theramind.simulation.latent": ("LatentState", "Questionnaire", "SessionInfo"),
    "theramind.simulation.patient": ("PatientSettings", "PatientTurn", "SimulatedPatient"),
    "theramind.simulation.scripted_patient": ("ScriptedPatient",),
    "theramind.simulation.llm_patient": ("LLMPatient",),
    "theramind.simulation.counselors": (
        "Counselor",
        "CounselorTurn",
        "TheraMindCounselor",
        "FixedTherapyMind",
    ),
    "theramind.simulation.baselines": ("PlainCounselor", "ReferenceCounselor"),
    "theramind.simulation.orchestrator": ("Orchestrator", "SessionResult"),
    "theramind.simulation.records": (
        "EndReason",
        "SessionLog",
        "TurnLog",
        "RunEvent",
        "strip_volatile",
    ),
    "theramind.simulation.experiment": ("ExperimentConfig", "load_experiment"),
    "theramind.simulation.runner": ("ExperimentRunner", "RunSummary", "run_experiment"),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
