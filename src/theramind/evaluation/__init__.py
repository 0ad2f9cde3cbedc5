"""Evaluation: LLM judges with strict rubrics, objective outcomes, comparisons and reports."""

from __future__ import annotations

from theramind.lazy import lazy_exports

_EXPORTS: dict[str, tuple[str, ...]] = {
    "theramind.evaluation.rubrics": ("Rubric", "load_rubric", "load_rubrics", "select_rubrics"),
    "theramind.evaluation.scores": (
        "Score",
        "Scorer",
        "ScoreRecord",
        "ScoreStore",
        "Target",
        "MetricInfo",
    ),
    "theramind.evaluation.judge": ("RubricScorer",),
    "theramind.evaluation.outcomes": ("OutcomeScorer", "outcome_scorers"),
    "theramind.evaluation.runs": ("RunData", "load_run"),
    "theramind.evaluation.aggregate": (
        "MetricSummary",
        "PairedDifference",
        "summarize",
        "paired_differences",
    ),
    "theramind.evaluation.stats": ("mean_ci",),
    "theramind.evaluation.evaluate": ("EvalOptions", "EvalResult", "evaluate_run"),
    "theramind.evaluation.report": ("Report", "write_report"),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
