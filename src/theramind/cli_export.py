"""`theramind export RUN`: a run as `messages` JSONL or in PsychEval's session layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from theramind.errors import TheraMindError

console = Console()


def export_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (from `theramind simulate`).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="messages or psycheval.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output file (default: in the run).")
    ] = None,
) -> None:
    """Write what was said in a run (no hidden state) for other tools and evaluators."""
    from theramind.datasets.export import export_run

    suffix = "jsonl" if fmt == "messages" else "json"
    target = out or run_dir / f"export.{fmt}.{suffix}"
    try:
        count = export_run(run_dir, fmt, target)
    except TheraMindError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(code=1) from exc
    unit = "sessions" if fmt == "messages" else "courses"
    console.print(f"Exported {count} {unit} to {target}")
