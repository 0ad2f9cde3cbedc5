"""Simulated patients, counselors under test, the session orchestrator and the experiment runner."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "SimProfile": "theramind.simulation.profiles",
    "load_profile": "theramind.simulation.profiles",
    "load_profiles": "theramind.simulation.profiles",
    "select_profiles": "theramind.simulation.profiles",
    "LatentState": "theramind.simulation.latent",
    "Questionnaire": "theramind.simulation.latent",
    "SessionInfo": "theramind.simulation.latent",
    "PatientSettings": "theramind.simulation.patient",
    "PatientTurn": "theramind.simulation.patient",
    "SimulatedPatient": "theramind.simulation.patient",
    "ScriptedPatient": "theramind.simulation.scripted_patient",
    "LLMPatient": "theramind.simulation.llm_patient",
    "Counselor": "theramind.simulation.counselors",
    "CounselorTurn": "theramind.simulation.counselors",
    "TheraMindCounselor": "theramind.simulation.counselors",
    "FixedTherapyMind": "theramind.simulation.counselors",
    "PlainCounselor": "theramind.simulation.baselines",
    "ReferenceCounselor": "theramind.simulation.baselines",
    "Orchestrator": "theramind.simulation.orchestrator",
    "SessionResult": "theramind.simulation.orchestrator",
    "EndReason": "theramind.simulation.records",
    "SessionLog": "theramind.simulation.records",
    "TurnLog": "theramind.simulation.records",
    "RunEvent": "theramind.simulation.records",
    "strip_volatile": "theramind.simulation.records",
    "ExperimentConfig": "theramind.simulation.experiment",
    "load_experiment": "theramind.simulation.experiment",
    "ExperimentRunner": "theramind.simulation.runner",
    "RunSummary": "theramind.simulation.runner",
    "run_experiment": "theramind.simulation.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'theramind.simulation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
