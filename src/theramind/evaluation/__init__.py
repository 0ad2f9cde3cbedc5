"""Evaluation: LLM judges with strict rubrics, objective outcomes, comparisons and reports."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "Rubric": "theramind.evaluation.rubrics",
    "load_rubric": "theramind.evaluation.rubrics",
    "load_rubrics": "theramind.evaluation.rubrics",
    "select_rubrics": "theramind.evaluation.rubrics",
    "Score": "theramind.evaluation.scores",
    "Scorer": "theramind.evaluation.scores",
    "ScoreRecord": "theramind.evaluation.scores",
    "ScoreStore": "theramind.evaluation.scores",
    "Target": "theramind.evaluation.scores",
    "MetricInfo": "theramind.evaluation.scores",
    "RubricScorer": "theramind.evaluation.judge",
    "OutcomeScorer": "theramind.evaluation.outcomes",
    "outcome_scorers": "theramind.evaluation.outcomes",
    "RunData": "theramind.evaluation.runs",
    "load_run": "theramind.evaluation.runs",
    "MetricSummary": "theramind.evaluation.aggregate",
    "PairedDifference": "theramind.evaluation.aggregate",
    "summarize": "theramind.evaluation.aggregate",
    "paired_differences": "theramind.evaluation.aggregate",
    "mean_ci": "theramind.evaluation.stats",
    "EvalOptions": "theramind.evaluation.evaluate",
    "EvalResult": "theramind.evaluation.evaluate",
    "evaluate_run": "theramind.evaluation.evaluate",
    "Report": "theramind.evaluation.report",
    "write_report": "theramind.evaluation.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'theramind.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
