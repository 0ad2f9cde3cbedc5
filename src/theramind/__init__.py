"""TheraMind: longitudinal psychological counseling with LLM agents.

The public names below load on first use, so importing a submodule (say `theramind.llm`)
does not pull in the graphs.
"""

from __future__ import annotations

from theramind.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, tuple[str, ...]] = {
    "theramind.api": ("TheraMind", "Session", "TurnResult"),
    "theramind.config": ("Settings", "load_config"),
    "theramind.errors": (
        "ConfigError",
        "InputError",
        "MemoryScopeError",
        "ModelError",
        "ModelUnavailableError",
        "SessionBusyError",
        "SessionClosedError",
        "SessionStateError",
        "SimulationError",
        "StructuredOutputError",
        "TheraMindError",
        "UnknownPatientError",
    ),
    "theramind.records": (
        "EfficacyReport",
        "Formulation",
        "PatientProfile",
        "Perception",
        "SessionOutcome",
        "SessionPlan",
        "TherapyDecision",
        "TurnRecord",
    ),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
