"""TheraMind: longitudinal psychological counseling with LLM agents.

The public names below load on first use, so importing a submodule (say `theramind.llm`)
does not pull in the graphs.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "TheraMind": "theramind.api",
    "Session": "theramind.api",
    "TurnResult": "theramind.api",
    "Settings": "theramind.config",
    "load_config": "theramind.config",
    "ConfigError": "theramind.errors",
    "InputError": "theramind.errors",
    "MemoryScopeError": "theramind.errors",
    "ModelError": "theramind.errors",
    "ModelUnavailableError": "theramind.errors",
    "SessionBusyError": "theramind.errors",
    "SessionClosedError": "theramind.errors",
    "SessionStateError": "theramind.errors",
    "SimulationError": "theramind.errors",
    "StructuredOutputError": "theramind.errors",
    "TheraMindError": "theramind.errors",
    "UnknownPatientError": "theramind.errors",
    "EfficacyReport": "theramind.records",
    "Formulation": "theramind.records",
    "PatientProfile": "theramind.records",
    "Perception": "theramind.records",
    "SessionOutcome": "theramind.records",
    "SessionPlan": "theramind.records",
    "TherapyDecision": "theramind.records",
    "TurnRecord": "theramind.records",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'theramind' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
