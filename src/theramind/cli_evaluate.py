"""`theramind evaluate` and `theramind report`: score a run, then write its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from theramind.cli_support import check_models, fail, print_validity, release_embedded_models
from theramind.errors import TheraMindError

console = Console()


def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (from `theramind simulate`).")],
    rubric: Annotated[
        list[str] | None,
        typer.Option(
            "--rubric", "-r", help="Rubric id to judge (repeatable; default: all default)."
        ),
    ] = None,
    rubrics_dir: Annotated[
        Path | None, typer.Option(help="Directory of rubric YAML files (default: configs/rubrics).")
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", "-n", help="Judge each target N times (judge variance).")
    ] = 1,
    judge: Annotated[
        str | None, typer.Option(help="Model preset for the judge role (default: the run's).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Framework config YAML for the judge.")
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Judge calls at once.")
    ] = 2,
    retry_missing: Annotated[
        bool, typer.Option(help="Judge again the scores a judge failure left missing.")
    ] = False,
    no_judge: Annotated[bool, typer.Option(help="Objective outcomes only, no judge.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Score a run (judge rubrics and objective outcomes) and print a summary table."""
    from theramind.evaluation import EvalOptions, evaluate_run, load_run, summarize
    from theramind.evaluation.console import JudgeProgress, progress_bar, result_line, summary_table
    from theramind.evaluation.runs import run_settings

    console.print(f"Evaluating {run_dir}" + ("" if no_judge else ": checking the judge model..."))
    try:
        options = EvalOptions(
            rubrics=rubric or [],
            rubrics_dir=str(rubrics_dir) if rubrics_dir else None,
            judge=not no_judge,
            samples=samples,
            concurrency=concurrency,
            retry_missing=retry_missing,
        )
        settings = None if no_judge else run_settings(load_run(run_dir), config, judge)
        if settings is not None:
            check_models(settings, ["judge"])
        if quiet or no_judge:
            result = evaluate_run(run_dir, options=options, settings=settings)
        else:
            with progress_bar(console) as bar:
                result = evaluate_run(
                    run_dir, options=options, settings=settings, on_progress=JudgeProgress(bar)
                )
    except (TheraMindError, ValueError) as exc:
        raise fail(console, exc) from exc
    finally:
        release_embedded_models()
    console.print(result_line(result))
    title, width = f"Evaluation: {run_dir}", min(console.width, 100)
    console.print(summary_table(summarize(result.records), title=title, width=width))
    console.print(f"Scores: {result.scores_path}")
    print_validity(console, run_dir)


def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (evaluate it first).")],
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Where to write (default RUN/report).")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Counselor the others are compared with (default: first).")
    ] = None,
    ci: Annotated[str, typer.Option(help="Confidence intervals: t or bootstrap.")] = "t",
) -> None:
    """Write a Markdown report with tables and PNG figures for an evaluated run."""
    from theramind.evaluation import write_report

    if ci not in ("t", "bootstrap"):
        raise fail(console, ValueError("--ci must be 't' or 'bootstrap'"))
    console.print(f"Writing the report of {run_dir} (tables and figures)...")
    try:
        result = write_report(run_dir, output_dir, baseline=baseline, method=ci)
    except TheraMindError as exc:
        raise fail(console, exc) from exc
    if not result.judged:
        console.print("[yellow]No judge scores: run `theramind evaluate RUN` first.[/yellow]")
    console.print(f"Report: {result.path}")
    print_validity(console, run_dir)
    for figure in result.figures:
        console.print(f"  figure: {figure}")
