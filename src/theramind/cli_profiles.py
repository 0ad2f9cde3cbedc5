"""`theramind profiles ...`: import datasets as simulated-patient profiles (see docs/data.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from theramind.errors import TheraMindError

profiles_app = typer.Typer(help="Build simulated-patient profiles from data.", no_args_is_help=True)
console = Console()


@profiles_app.command("import")
def import_command(
    source: Annotated[Path, typer.Argument(help="The dataset file to import.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="Source format, e.g. esconv.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the profile YAML.")],
    seed: Annotated[int, typer.Option(help="Seed of the priors for fields a source lacks.")] = 0,
    config: Annotated[Path | None, typer.Option(help="Framework config (therapy catalog).")] = None,
) -> None:
    """Write one validated profile per record; bad records are listed, never fatal."""
    from theramind.config import load_config
    from theramind.datasets import import_profiles

    try:
        therapies = load_config(config).taxonomy().therapy_ids
        result = import_profiles(fmt, source, out, therapies, seed=seed)
    except TheraMindError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(code=1) from exc
    for rejection in result.rejected:
        console.print(f"[yellow]rejected[/yellow] {escape(str(rejection))}", soft_wrap=True)
    console.print(escape(result.summary()), soft_wrap=True)
    console.print(f"Profiles: {out} (report: {out / 'import.json'})")
