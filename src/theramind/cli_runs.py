"""`theramind runs ...`: maintenance of run directories (registered in `theramind.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from theramind.errors import TheraMindError

runs_app = typer.Typer(help="Maintain run directories.", no_args_is_help=True)
console = Console()


@runs_app.command("scrub")
def scrub(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (from `theramind simulate`).")],
    patient: Annotated[str, typer.Option("--patient", "-p", help="The patient id to remove.")],
) -> None:
    """Remove a patient's records from a run: turns, sessions, events, scores, header, homes."""
    from theramind.simulation.scrub import scrub_run

    try:
        report = scrub_run(run_dir, patient)
    except TheraMindError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(code=1) from exc
    for name, count in sorted(report.records.items()):
        console.print(f"  {name}: {count} removed")
    for home in report.homes:
        console.print(f"  {home}: deleted")
    console.print(f"Removed {report.removed} records and {len(report.homes)} track homes.")
    if report.remaining:
        console.print(
            "[yellow]Still naming the patient (render them again): "
            + escape(", ".join(report.remaining))
            + "[/yellow]",
            soft_wrap=True,
        )
