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

from theramind.cli_support import (
    check_models,
    exit_interrupted,
    print_validity,
    server_from_env,
    show_signals,
)
from theramind.config import default_config_dir
from theramind.errors import ConfigError, TheraMindError

if TYPE_CHECKING:
    from theramind.api import Session, TheraMind

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
        raise _fail(exc) from exc
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
        raise _fail(ConfigError("the web console needs `pip install 'theramind[web]'`")) from exc
    options = ServeOptions(host=host, port=port, token=token, cors_origins=cors_origin or [])
    try:
        run_server(options, config, runs)
    except TheraMindError as exc:
        raise _fail(exc) from exc


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
    return typer.Exit(code=1)


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
        raise _fail(ConfigError("--address is for --engine ray"))
    if workers > 1 and engine is Engine.ray:
        raise _fail(
            ConfigError(
                "--workers is for the local engine; on Ray the cluster's CPUs "
                "decide how many courses run at once"
            )
        )
    try:
        run_dir = _run(
            config, output_dir, concurrency, fresh, quiet, workers, engine=engine, address=address
        )
    except TheraMindError as exc:
        raise _fail(exc) from exc
    except KeyboardInterrupt:
        exit_interrupted(console, "interrupted; rerun to resume")
    console.print(_summary_table(run_dir))
    console.print(f"Records: {run_dir}/turns.jsonl, sessions.jsonl, events.jsonl")
    code = print_validity(console, run_dir)
    if code:
        raise typer.Exit(code=code)


def _say(who: str, text: str, note: str = "") -> None:
    color = "cyan" if who == "Counselor" else "green"
    tail = f"  [dim]({escape(note)})[/dim]" if note else ""
    console.print(f"[{color}]{escape(who)}:[/{color}] {escape(text)}{tail}")


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
            _say("Counselor", t["prompt"])
        r = t["response"]
        _say(f"Patient ({t['patient']['attitude']})", t["patient"]["text"])
        tag = f"strategy {r['strategy']}, therapy {' + '.join(r['therapies'])}, phase {r['phase']}"
        _say("Counselor", r["reply"], tag)
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
        raise _fail(exc) from exc
    except KeyboardInterrupt:
        exit_interrupted(console, "interrupted")
    _print_dialogue(run_dir)
    console.print(f"\nRecords: {run_dir.resolve()} (turns.jsonl, sessions.jsonl, events.jsonl)")
    print_validity(console, run_dir)  # a demo shows its dialogue either way
    _release_embedded_models()


def _release_embedded_models() -> None:
    """Free cached llama.cpp models now; freed at interpreter exit they print a traceback."""
    from theramind.llm.backends.llamacpp import release_models

    release_models()


@app.command()
def chat(
    patient_id: Annotated[str, typer.Option("--patient-id", "-p", help="Who you are.")] = "guest",
    config: Annotated[Path | None, typer.Option("--config", help="Framework config YAML.")] = None,
    profile: Annotated[
        str | None, typer.Option(help="Register the intake of a profile from configs/patients.")
    ] = None,
    name: Annotated[str, typer.Option(help="Your name, for a new patient.")] = "",
) -> None:
    """Talk to the counselor: type messages (stdin); '/end' closes the session."""
    console.print("Checking the counselor model, then loading models and memory...")
    try:
        from theramind.api import TheraMind
        from theramind.config import load_config

        check_models(load_config(config), ["counselor"])
        mind = TheraMind.from_config(config)
        console.print(f"[dim]Patient records: {mind.settings.home}[/dim]")
        with mind:
            _chat(mind, patient_id, profile, name)
    except TheraMindError as exc:
        raise _fail(exc) from exc
    except KeyboardInterrupt:
        exit_interrupted(console, "interrupted; the session stays open: chat again to resume")


def _chat(mind: TheraMind, patient_id: str, profile: str | None, name: str) -> None:
    """Run one interactive session over stdin."""
    from theramind.records import PatientProfile

    intake = None
    if profile:
        from theramind.simulation.profiles import load_profile, patients_dir

        sim = load_profile(patients_dir(mind.settings.config_dir_path) / f"{profile}.yaml")
        intake = sim.intake().model_copy(update={"patient_id": patient_id})
    elif not mind.services.store.has_patient(patient_id):
        intake = PatientProfile(patient_id=patient_id, pseudonym=name)
    session = mind.start_session(patient_id, profile=intake)
    _say("Counselor", session.opening)
    while True:
        console.print("[green]You>[/green] ", end="")
        line = sys.stdin.readline()
        text = line.strip()
        if not line or text in ("/end", "/quit"):
            closed_by_patient = bool(line)
            if session.risk_open and not _leave_at_risk(mind, session, closed_by_patient):
                return
            break
        if not text:
            continue
        try:
            result = session.respond(text)
        except TheraMindError as exc:
            console.print(f"[red]{escape(str(exc))}[/red]")
            continue
        rec = result.record
        _say(
            "Counselor",
            result.reply,
            f"{rec.perception.emotion}, {rec.perception.attitude}; strategy {rec.strategy}; "
            f"therapy {' + '.join(rec.therapies)}; risk {rec.risk_level}",
        )
        if result.closing:
            break
    if session.turns:
        console.print("[dim]Closing the session: reviewing it and planning the next...[/dim]")
        outcome = session.end()
        d = outcome.decision
        console.print(
            f"[bold]Next session:[/bold] {d.action} {' + '.join(d.therapies)} "
            f"(phase {d.phase}). {escape(d.reason)}"
        )


def _leave_at_risk(mind: TheraMind, session: Session, closed_by_patient: bool) -> bool:
    """Give the safety reminder on leaving with a risk open; return whether to close now.

    Only the patient's own closing command closes the session; input that simply stops
    (stdin closed) leaves it open, to be picked up by the next `chat` of this patient.
    """
    from theramind.safety import safety_reminder

    _say("Counselor", safety_reminder(mind.services.resources))
    if not closed_by_patient:
        console.print(
            f"[dim]A risk is open: the session stays open; `theramind chat -p "
            f"{escape(session.patient_id)}` picks it up.[/dim]"
        )
    return closed_by_patient


@app.command()
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
        raise _fail(exc) from exc
    finally:
        _release_embedded_models()
    console.print(result_line(result))
    title, width = f"Evaluation: {run_dir}", min(console.width, 100)
    console.print(summary_table(summarize(result.records), title=title, width=width))
    console.print(f"Scores: {result.scores_path}")
    print_validity(console, run_dir)


@app.command()
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
        raise _fail(ValueError("--ci must be 't' or 'bootstrap'"))
    console.print(f"Writing the report of {run_dir} (tables and figures)...")
    try:
        result = write_report(run_dir, output_dir, baseline=baseline, method=ci)
    except TheraMindError as exc:
        raise _fail(exc) from exc
    if not result.judged:
        console.print("[yellow]No judge scores: run `theramind evaluate RUN` first.[/yellow]")
    console.print(f"Report: {result.path}")
    print_validity(console, run_dir)
    for figure in result.figures:
        console.print(f"  figure: {figure}")


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
        raise _fail(exc) from exc
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
        raise _fail(exc) from exc
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
