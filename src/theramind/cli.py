"""The `theramind` command: simulate experiments, run the demo, chat with the counselor."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from theramind.cli_chat import chat
from theramind.cli_evaluate import evaluate, report
from theramind.cli_support import (
    exit_interrupted,
    fail,
    print_validity,
    release_embedded_models,
    say,
    server_from_env,
    show_signals,
)
from theramind.config import default_config_dir
from theramind.errors import ConfigError, TheraMindError

if TYPE_CHECKING:
    pass

app = typer.Typer(
    name="theramind",
    help="Longitudinal psychological counseling with LLM agents.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.callback()
def _options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    """Longitudinal psychological counseling with LLM agents."""
    show_signals(console, verbose)


@app.command("config")
def show_config(
    config: Annotated[Path | None, typer.Option("--config", help="Framework config YAML.")] = None,
) -> None:
    """Print the effective settings (your file merged onto the defaults) and where data lives."""
    from theramind.config import load_config
    from theramind.settings_view import render

    try:
        settings = load_config(config)
    except TheraMindError as exc:
        raise fail(console, exc) from exc
    print(render(settings), end="")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8765,
    config: Annotated[Path | None, typer.Option("--config", help="Framework config YAML.")] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="THERAMIND_API_TOKEN", help="API token; required off loopback."),
    ] = None,
    runs: Annotated[Path, typer.Option(help="Folder of runs for the run viewer.")] = Path("runs"),
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="Browser origin allowed to call the API (repeat).")
    ] = None,
) -> None:
    """Serve the HTTP API and the web console (chat, supervision, patients, runs)."""
    try:
        from theramind.web.security import ServeOptions
        from theramind.web.serve import serve as run_server
    except ImportError as exc:
        raise fail(
            console, ConfigError("the web console needs `pip install 'theramind[web]'`")
        ) from exc
    options = ServeOptions(host=host, port=port, token=token, cors_origins=cors_origin or [])
    try:
        run_server(options, config, runs)
    except TheraMindError as exc:
        raise fail(console, exc) from exc


class Engine(StrEnum):
    """Where `simulate` runs the patients' courses."""

    local = "local"
    ray = "ray"


class LiveProgress:
    """Bars for patients, sessions and turns (with tokens), fed by the runner's notices."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tracks = progress.add_task("patients", total=None)
        self.sessions = progress.add_task("sessions", total=None)
        self.turns = progress.add_task("turns", total=None)
        self.tokens = 0
        self.failed = 0

    def __call__(self, note: Any) -> None:
        """Advance the bars for one progress notice of the runner."""
        bar = self.progress
        if note.kind == "plan":
            bar.update(self.tracks, total=note.tracks)
            bar.update(self.sessions, total=note.sessions, completed=note.done_sessions)
        elif note.kind == "round":
            self.tokens += note.tokens
            bar.update(self.turns, advance=1, description=f"turns ({self.tokens:,} tokens)")
        elif note.kind == "session":
            bar.update(self.sessions, advance=1)
        elif note.kind in ("track_done", "track_failed"):
            self.failed += note.kind == "track_failed"
            label = f"patients ({self.failed} failed)" if self.failed else "patients"
            bar.update(self.tracks, advance=1, description=label)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _summary_table(run_dir: Path) -> Table:
    from theramind.simulation.summary import summarize_run

    table = Table(
        title=f"Run summary: {run_dir}",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        show_edge=False,
        caption="p/c/cap: sessions ended by patient/counselor/round cap; calls, tokens: counselor "
        "model calls and prompt tokens per turn; fit: share "
        "of turns whose strategy suited the patient's attitude; ΔPHQ9: hidden symptom change, "
        "first to last session; WAI: mean alliance item, 1-5; fallback: share of model calls "
        "the documented fallback replaced (worst role)",
    )
    table.add_column("counselor", no_wrap=True)
    columns = ("pts", "sess", "rnds", "p/c/cap", "calls", "tokens", "fit", "ΔPHQ9", "WAI")
    for column in (*columns, "fallback"):
        table.add_column(column, justify="right", no_wrap=True, min_width=len(column))
    for s in summarize_run(run_dir):
        reasons = s.end_reasons
        table.add_row(
            s.counselor,
            f"{s.tracks - s.failed}/{s.tracks}" if s.failed else str(s.tracks),
            str(s.sessions),
            f"{s.mean_rounds:.1f}",
            f"{reasons.get('patient_closed', 0)}/{reasons.get('counselor_closed', 0)}/"
            f"{reasons.get('round_cap', 0)}",
            f"{s.calls_per_turn:.1f}",
            f"{s.prompt_tokens_per_turn:,.0f}",
            f"{s.understood:.2f}",
            f"{s.phq9_change:+.2f}",
            f"{s.alliance:.2f}",
            f"{max(s.fallback_rates.values(), default=0.0):.0%}",
        )
    return table


def _run(
    config: Path,
    output_dir: Path | None,
    concurrency: int | None,
    fresh: bool,
    quiet: bool,
    workers: int = 1,
    overrides: dict[str, Any] | None = None,
    *,
    engine: Engine = Engine.local,
    address: str | None = None,
) -> Path:
    console.print(f"Loading the experiment {config}...")
    from theramind.simulation import ExperimentRunner, load_experiment

    experiment = load_experiment(config, **(overrides or {}))
    options: dict[str, Any] = {
        "output_dir": output_dir,
        "concurrency": concurrency,
        "fresh": fresh,
        "workers": workers,
        "engine": engine.value,
        "address": address,
    }
    runner = ExperimentRunner(experiment, **options)
    console.print(f"Experiment {experiment.name}: checking the models...")
    runner.check_models()
    console.print(f"{runner.summary.sessions_total} sessions planned; records go to {runner.out}")
    if quiet:
        summary = runner.run()
    else:
        with _progress() as progress:
            runner.on_progress = LiveProgress(progress)
            summary = runner.run()
    console.print(
        f"{summary.sessions_run} sessions run, {summary.sessions_resumed} kept from before, "
        f"{summary.tracks_failed} patient(s) failed, {summary.wall_s:.1f}s"
    )
    for url, usage in sorted(summary.endpoints.items()):
        console.print(
            f"endpoint {escape(url)}: {usage.get('calls', 0):.0f} calls, "
            f"{usage.get('failures', 0):.0f} failed"
        )
    for failure in summary.failures:
        console.print(
            f"[red]failed[/red] {failure.counselor}/{failure.patient_id} "
            f"session {failure.session_no}: {escape(failure.error or '')}"
        )
    return runner.out


@app.command()
def simulate(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (see configs/experiments/).")],
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Override the run directory.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", help="Patients run at once.")
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Delete earlier records instead of resuming.")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No live progress bars.")] = False,
    workers: Annotated[
        int, typer.Option("--workers", "-w", help="Processes to spread patients over.")
    ] = 1,
    engine: Annotated[
        Engine,
        typer.Option(help="local: this machine's processes; ray: each course a Ray task."),
    ] = Engine.local,
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to join (e.g. 10.0.0.5:6379); default RAY_ADDRESS, else a local one."
        ),
    ] = None,
) -> None:
    """Run (or resume) a simulated experiment and print a summary table."""
    if address is not None and engine is not Engine.ray:
        raise fail(console, ConfigError("--address is for --engine ray"))
    if workers > 1 and engine is Engine.ray:
        raise fail(
            console,
            ConfigError(
                "--workers is for the local engine; on Ray the cluster's CPUs "
                "decide how many courses run at once"
            ),
        )
    try:
        run_dir = _run(
            config, output_dir, concurrency, fresh, quiet, workers, engine=engine, address=address
        )
    except TheraMindError as exc:
        raise fail(console, exc) from exc
    except KeyboardInterrupt:
        exit_interrupted(console, "interrupted; rerun to resume")
    console.print(_summary_table(run_dir))
    console.print(f"Records: {run_dir}/turns.jsonl, sessions.jsonl, events.jsonl")
    code = print_validity(console, run_dir)
    if code:
        raise typer.Exit(code=code)


def _print_dialogue(run_dir: Path) -> None:
    turns = [json.loads(line) for line in (run_dir / "turns.jsonl").read_text().splitlines()]
    sessions = {
        (s["counselor"], s["patient_id"], s["session_no"]): s
        for s in map(json.loads, (run_dir / "sessions.jsonl").read_text().splitlines())
    }
    turns.sort(key=lambda t: (t["counselor"], t["patient_id"], t["session_no"], t["round"]))
    current = None
    for t in turns:
        key = (t["counselor"], t["patient_id"], t["session_no"])
        if key != current:
            current = key
            console.rule(f"{t['counselor']} × {t['patient_id']}, session {t['session_no']}")
            say(console, "Counselor", t["prompt"])
        r = t["response"]
        say(console, f"Patient ({t['patient']['attitude']})", t["patient"]["text"])
        tag = f"strategy {r['strategy']}, therapy {' + '.join(r['therapies'])}, phase {r['phase']}"
        say(console, "Counselor", r["reply"], tag)
        session = sessions.get(key)
        if session and t["round"] == session["rounds"]:
            _print_decision(session)


def _print_decision(session: dict[str, Any]) -> None:
    close = session.get("counselor_close") or {}
    decision, efficacy = close.get("decision") or {}, close.get("efficacy") or {}
    console.print(f"[dim]Session ended: {session['end_reason']}.[/dim]")
    if decision:
        console.print(
            f"[bold]Therapy decision:[/bold] {decision.get('action')} → "
            f"{' + '.join(decision.get('therapies', []))} (phase {decision.get('phase')}); "
            f"efficacy {efficacy.get('verdict')}. {escape(str(decision.get('reason', '')))}"
        )
    q, latent = session["questionnaire"], session["latent_after"]
    items = ", ".join(f"{k} {v}" for k, v in q["alliance"].items())
    console.print(
        f"[dim]Patient's questionnaire: PHQ-9 {q['phq9']}, GAD-7 {q['gad7']}, alliance "
        f"({items}). Hidden state: PHQ-9 {latent['phq9']:.1f}, GAD-7 {latent['gad7']:.1f}.[/dim]"
    )


@app.command()
def demo(
    output_dir: Annotated[Path | None, typer.Option("--output-dir", "-o")] = None,
) -> None:
    """Treat one simulated patient for two short sessions on the embedded CPU model."""
    config = default_config_dir() / "experiments" / "demo.yaml"
    server = server_from_env()  # the demo's embedded models are a default, not a choice
    where = f"the model server at {server}" if server else "the embedded model (SmolLM2-135M, CPU)"
    console.print(f"Running TheraMind on {where}. Loading models...")
    try:
        run_dir = _run(config, output_dir, None, True, False, 1, {"models": {}} if server else None)
    except TheraMindError as exc:
        raise fail(console, exc) from exc
    except KeyboardInterrupt:
        exit_interrupted(console, "interrupted")
    _print_dialogue(run_dir)
    console.print(f"\nRecords: {run_dir.resolve()} (turns.jsonl, sessions.jsonl, events.jsonl)")
    print_validity(console, run_dir)  # a demo shows its dialogue either way
    release_embedded_models()


app.command()(chat)
app.command()(evaluate)
app.command()(report)


@app.command()
def show(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (from `theramind simulate`).")],
    patient: Annotated[str | None, typer.Option("--patient", "-p", help="Patient id.")] = None,
    session: Annotated[int | None, typer.Option("--session", "-s", help="Session number.")] = None,
    counselor: Annotated[str | None, typer.Option("--counselor", "-c", help="Counselor.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (default: every seed).")] = None,
) -> None:
    """Print what a run holds, or a patient's transcript with each turn's decisions."""
    from theramind.evaluation.show import show_run

    try:
        parts = show_run(run_dir, patient, session, counselor, seed, min(console.width, 100))
    except TheraMindError as exc:
        raise fail(console, exc) from exc
    for part in parts:
        console.print(part)


@app.command("screen")
def screen_cmd(
    text: Annotated[str | None, typer.Argument(help="A message to screen.")] = None,
    jsonl: Annotated[
        Path | None, typer.Option(help='A file of {"id", "text"} lines ("-" for stdin).')
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Framework config YAML.")] = None,
    semantic: Annotated[bool, typer.Option(help="Run the semantic layer too.")] = True,
) -> None:
    """Screen messages for risk; print one JSON line each (level, categories, layers)."""
    from theramind.config import load_config
    from theramind.screen_cli import run_screen

    try:
        settings = load_config(config) if config else None
        bad = run_screen(
            text,
            jsonl,
            out=sys.stdout,
            languages=settings.safety.languages if settings else None,
            semantic=semantic and (settings.safety.semantic if settings else True),
            config_dir=settings.config_dir_path if settings else None,
        )
    except TheraMindError as exc:
        raise fail(console, exc) from exc
    if bad:
        typer.echo(f"{bad} line(s) could not be screened; see their error objects", err=True)
        raise typer.Exit(code=2)


from theramind.cli_runs import runs_app  # noqa: E402  (registered after the commands above)

app.add_typer(runs_app, name="runs")

from theramind.cli_profiles import profiles_app  # noqa: E402

app.add_typer(profiles_app, name="profiles")

from theramind.cli_export import export_command  # noqa: E402
from theramind.cli_transcripts import transcripts_app  # noqa: E402

app.add_typer(transcripts_app, name="transcripts")
app.command("export")(export_command)

if __name__ == "__main__":
    app()
