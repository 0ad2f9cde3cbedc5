"""`theramind transcripts evaluate`: the project's judges on conversations it did not produce."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from theramind.errors import TheraMindError

transcripts_app = typer.Typer(
    help="Judge transcripts from outside (AnnoMI, ESConv, messages JSONL).", no_args_is_help=True
)
console = Console()


def judge_settings(config: Path | None, judge: str | None) -> Any:
    """Return the config's settings, with the judge role set to a preset when one is named."""
    from theramind.config import load_config

    base = load_config(config)
    if not judge:
        return base
    models: dict[str, Any] = {r: s.model_dump() for r, s in base.models.items()}
    models["judge"] = judge
    return load_config(config, models=models)


@transcripts_app.command("evaluate")
def evaluate_command(
    source: Annotated[Path, typer.Argument(help="The transcript file.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="annomi, esconv or messages.")],
    judge: Annotated[
        str | None, typer.Option(help="Model preset for the judge (default: the config's).")
    ] = None,
    rubric: Annotated[
        list[str] | None,
        typer.Option("--rubric", "-r", help="Rubric id (repeatable; default: session rubrics)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Directory for scores and summary.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Framework config YAML.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Judge calls.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap intervals.")] = 0,
) -> None:
    """Score each conversation; with quality labels, give each rubric's AUROC and interval."""
    from theramind.cli_support import check_models
    from theramind.evaluation.external import evaluate_transcripts

    target = out or Path(f"{source}.eval")
    try:
        settings = judge_settings(config, judge)
        check_models(settings, ["judge"])
        result = evaluate_transcripts(
            fmt,
            source,
            settings,
            rubrics=rubric or None,
            out=target,
            concurrency=concurrency,
            seed=seed,
        )
    except (TheraMindError, ValueError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(code=1) from exc
    for note in result.skipped[:20]:
        console.print(f"[yellow]skipped[/yellow] {escape(note)}", soft_wrap=True)
    table = Table(title=f"Judge {escape(result.judge_model)} on {len(result.rows)} conversations")
    for column in ("rubric", "mean", "missing", "AUROC (high vs other)", "95% CI", "n+/n-"):
        table.add_column(column)
    for rid, sep in result.separation.items():
        values = [r["scores"][rid] for r in result.rows if r["scores"].get(rid) is not None]
        mean = f"{sum(values) / len(values):.2f}" if values else "-"
        ci = sep["ci95"]
        table.add_row(
            rid,
            mean,
            str(len(result.rows) - len(values)),
            "-" if sep["auroc"] is None else f"{sep['auroc']:.3f}",
            "-" if ci is None else f"{ci[0]:.3f}..{ci[1]:.3f}",
            f"{sep['positives']}/{sep['negatives']}",
        )
    console.print(table)
    console.print(f"Scores: {target / 'scores.jsonl'}; summary: {target / 'summary.json'}")
