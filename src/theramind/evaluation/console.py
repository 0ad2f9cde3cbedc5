"""Rich renderables for the `evaluate` and `report` commands (the CLI prints them)."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from theramind.evaluation.aggregate import MetricSummary, scale_label
from theramind.evaluation.evaluate import EvalProgress, EvalResult

WIDTH = 100
"""Columns a printed table may take, whatever the terminal."""
METRIC_WIDTH = 22


def _cell(s: MetricSummary | None) -> Text:
    if s is None:
        return Text("")
    if s.mean is None:
        return Text(f"missing {s.missing}", style="red") if s.missing else Text("–")
    text = Text(f"{s.mean:.2f}")
    if s.ci_low is not None and s.ci_high is not None:
        text.append(f" [{s.ci_low:.2f}, {s.ci_high:.2f}]{'*' if s.clipped else ''}")
    if s.missing:
        text.append(f" ({s.missing} missing)", style="red")
    return text


def _caption(summaries: Sequence[MetricSummary]) -> str:
    n = max((s.n for s in summaries), default=0)
    method = next((s.method for s in summaries), "t")
    ci = "Student t" if method == "t" else "percentile bootstrap"
    return (
        f"mean [95% CI, {ci}] over tracks (patient × seed; up to {n}); *: interval cut at the "
        "end of the metric's scale; ↑/↓ higher/lower is better; missing: judge failures, left "
        "out of the means"
    )


def _table(
    summaries: Sequence[MetricSummary], counselors: Sequence[str], title: str, caption: str
) -> Table:
    table = Table(
        title=title, box=box.SIMPLE_HEAD, caption=caption, title_justify="left", pad_edge=False
    )
    table.add_column("metric", max_width=METRIC_WIDTH, overflow="fold")
    table.add_column("scale", justify="right", no_wrap=True)
    for counselor in counselors:
        table.add_column(counselor, justify="right", no_wrap=True)
    for metric in dict.fromkeys(s.metric for s in summaries):
        by = {s.counselor: s for s in summaries if s.metric == metric}
        first = next(iter(by.values()))
        arrow = {True: " ↑", False: " ↓", None: "  "}[first.higher_is_better]
        style = "bold" if first.source == "judge" else None
        table.add_row(
            Text(first.name),
            scale_label(first.scale_min, first.scale_max) + arrow,
            *[_cell(by.get(c)) for c in counselors],
            style=style,
        )
    return table


def _width(console: Console, table: Table) -> int:
    return Measurement.get(console, console.options.update(max_width=10_000), table).maximum


def fit_columns(
    names: Sequence[str], build: Callable[[Sequence[str]], Table], width: int = WIDTH
) -> list[list[str]]:
    """Split column names into groups, in order, so that `build(group)` fits in `width`."""
    measure = Console(width=10_000, file=io.StringIO())
    groups: list[list[str]] = []
    for name in names:
        if groups and _width(measure, build([*groups[-1], name])) <= width:
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


def summary_tables(
    summaries: Sequence[MetricSummary], title: str = "", *, width: int = WIDTH
) -> list[Table]:
    """One row per metric, one column per counselor: mean [95% CI].

    Counselors are split across as many tables as it takes for each to fit in `width` columns.
    """
    overall = [s for s in summaries if s.category is None]
    counselors = list(dict.fromkeys(s.counselor for s in overall))
    title = title or "Evaluation summary"
    groups = fit_columns(counselors, lambda group: _table(overall, group, "", ""), width)
    tables = []
    for i, group in enumerate(groups or [[]]):
        part = f" ({i + 1}/{len(groups)})" if len(groups) > 1 else ""
        last = i == len(groups) - 1
        tables.append(_table(overall, group, title + part, _caption(overall) if last else ""))
    return tables


def summary_table(
    summaries: Sequence[MetricSummary], title: str = "", *, width: int = WIDTH
) -> Group:
    """The summary as one printable group of tables that each fit in `width` columns."""
    return Group(*summary_tables(summaries, title, width=width))


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
        """Advance the bar for one progress notice of the evaluation."""
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
