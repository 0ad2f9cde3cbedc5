"""`theramind profiles ...`: import datasets as simulated-patient profiles (see docs/data.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from theramind.errors import InputError, TheraMindError

profiles_app = typer.Typer(help="Build simulated-patient profiles from data.", no_args_is_help=True)
console = Console()


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """Parse `FIELD=COLUMN` pairs.

    Raises:
        InputError: a pair without `=` or with an empty side.
    """
    mapping = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise InputError(f"--map {pair!r}: write FIELD=COLUMN, e.g. current_problems=text")
        mapping[field.strip()] = column.strip()
    return mapping


@profiles_app.command("import")
def import_command(
    source: Annotated[Path, typer.Argument(help="The dataset file to import.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="esconv, psycheval, ccd, report, jsonl or csv.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the profile YAML.")],
    seed: Annotated[int, typer.Option(help="Seed of the priors for fields a source lacks.")] = 0,
    config: Annotated[Path | None, typer.Option(help="Framework config (therapy catalog).")] = None,
    model: Annotated[
        str | None,
        typer.Option(help="report: model preset for the patient role that extracts profiles."),
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="jsonl/csv: FIELD=COLUMN, e.g. current_problems=text."),
    ] = None,
) -> None:
    """Write one validated profile per record; bad records are listed, never fatal."""
    from theramind.config import load_config
    from theramind.datasets import import_profiles

    try:
        mapping = parse_mapping(map_ or [])
        settings = load_config(config)
        if model:
            models = {r: s.model_dump() for r, s in settings.models.items()}
            settings = load_config(config, models={**models, "patient": model})
        therapies = settings.taxonomy().therapy_ids
        result = import_profiles(
            fmt, source, out, therapies, seed=seed, mapping=mapping, settings=settings
        )
    except TheraMindError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(code=1) from exc
    for rejection in result.rejected:
        console.print(f"[yellow]rejected[/yellow] {escape(str(rejection))}", soft_wrap=True)
    console.print(escape(result.summary()), soft_wrap=True)
    console.print(f"Profiles: {out} (report: {out / 'import.json'})")
