"""`theramind chat`: one interactive session with the counselor over stdin."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from theramind.cli_support import check_models, exit_interrupted, fail, say
from theramind.errors import TheraMindError

if TYPE_CHECKING:
    from theramind.api import Session, TheraMind

console = Console()


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
        raise fail(console, exc) from exc
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
    say(console, "Counselor", session.opening)
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
        say(
            console,
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

    say(console, "Counselor", safety_reminder(mind.services.resources))
    if not closed_by_patient:
        console.print(
            f"[dim]A risk is open: the session stays open; `theramind chat -p "
            f"{escape(session.patient_id)}` picks it up.[/dim]"
        )
    return closed_by_patient
