"""Rich renderables for the `evaluate` and `report` commands (the CLI prints them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from theramind.evaluation.aggregate import MetricSummary
from theramind.evaluation.evaluate import EvalProgress, EvalResult


def _cell(s: MetricSummary | None) -> str:
    if s is None:
        return ""
    if s.mean is None:
        return f"[red]missing {s.missing}[/red]" if s.missing else "–"
    text = f"{s.mean:.2f}"
    if s.ci_low is not None and s.ci_high is not None:
        text += f" ±{(s.ci_high - s.ci_low) / 2:.2f}"
    if s.missing:
        text += f" [red]({s.missing} missing)[/red]"
    return text


def summary_table(summaries: Sequence[MetricSummary], title: str = "") -> Table:
    """One row per metric, one column per counselor: mean ± 95% CI half-width."""
    overall = [s for s in summaries if s.category is None]
    counselors = list(dict.fromkeys(s.counselor for s in overall))
    n = max((s.n for s in overall), default=0)
    table = Table(
        title=title or "Evaluation summary",
        box=box.SIMPLE_HEAD,
        caption=f"mean ± half-width of the 95% CI over tracks (patient × seed; up to {n}); "
        "↑/↓ higher/lower is better; missing: judge failures, left out of the means",
    )
    table.add_column("metric", no_wrap=True)
    table.add_column("scale", justify="right", no_wrap=True)
    for counselor in counselors:
        table.add_column(counselor, justify="right", no_wrap=True)
    for metric in dict.fromkeys(s.metric for s in overall):
        by = {s.counselor: s for s in overall if s.metric == metric}
        first = next(iter(by.values()))
        arrow = {True: " ↑", False: " ↓", None: ""}[first.higher_is_better]
        scale = (
            f"{first.scale_min:g}–{first.scale_max:g}"
            if first.scale_min is not None and first.scale_max is not None
            else ""
        )
        style = "bold" if first.source == "judge" else None
        table.add_row(
            f"{first.name}{arrow}", scale, *[_cell(by.get(c)) for c in counselors], style=style
        )
    return table


def result_line(result: EvalResult) -> str:
    """A one-line account of what an evaluation did."""
    parts = [
        f"{result.outcomes_written} outcome score(s) updated",
        f"{result.judged} judged ({result.judge_missing} missing)",
        f"{result.kept} kept from before",
    ]
    if result.judge_model:
        parts.append(f"judge {result.judge_model}")
    line = ", ".join(parts) + f", {result.wall_s:.1f}s"
    if result.judge_missing:
        line += " — rerun with --retry-missing to judge the missing ones again"
    return line


class JudgeProgress:
    """A progress bar fed by the evaluation's notices."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("judging", total=None)
        self.missing = 0

    def __call__(self, note: EvalProgress) -> None:
        if note.kind == "plan":
            self.progress.update(self.task, total=note.total)
        elif note.kind == "done":
            self.missing += note.missing
            label = f"judging ({self.missing} missing)" if self.missing else "judging"
            self.progress.update(self.task, advance=1, description=label)


def progress_bar(console: Any) -> Progress:
    """A progress display for judging."""
    return Progress(
        TextColumn("[bold]{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
