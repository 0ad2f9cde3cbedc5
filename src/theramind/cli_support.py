"""What every command shares: model checks before work, signals on long work, a clean Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn, TextIO

import typer
from rich.console import Console
from rich.markup import escape

from theramind.config import ROLES, Settings
from theramind.signals import is_signal

EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT, as shells report it)."""


class SignalHandler(logging.Handler):
    """Shows the library's signals on long work (model loads, checks) as dim console lines."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.INFO)
        self.console = console
        self.addFilter(is_signal)

    def emit(self, record: logging.LogRecord) -> None:
        """Print one signal."""
        try:
            self.console.print(f"[dim]… {escape(record.getMessage())}[/dim]", soft_wrap=True)
        except Exception:  # a display must never break the command
            self.handleError(record)


class CliLogHandler(logging.StreamHandler[TextIO]):
    """The stderr handler the CLI puts on the root logger (once, however often it is set up)."""


def show_signals(console: Console, verbose: bool) -> None:
    """Configure logging: signals always shown, everything else at INFO only when verbose."""
    level = logging.INFO if verbose else logging.WARNING
    root = logging.getLogger()
    if not any(isinstance(h, CliLogHandler) for h in root.handlers):
        ours = CliLogHandler()
        ours.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(ours)
    # Only the handler the CLI installed is tuned: others (an embedding app's, a test's
    # log capture) keep the levels their owner gave them.
    for handler in root.handlers:
        if isinstance(handler, CliLogHandler):
            handler.setLevel(level)
    if verbose:
        root.setLevel(logging.INFO)
    package = logging.getLogger("theramind")
    package.setLevel(logging.INFO)
    for handler in [h for h in package.handlers if isinstance(h, SignalHandler)]:
        package.removeHandler(handler)
    if not verbose:  # verbose logging prints the signals already
        package.addHandler(SignalHandler(console))


def check_models(settings: Settings, roles: Iterable[str]) -> None:
    """Stop with the router's message when a role's model server is unreachable.

    Raises:
        ModelUnavailableError: a server is down; the message says what to start.
    """
    from theramind.llm import ModelRouter

    router = ModelRouter(settings)
    try:
        router.check(tuple(roles))
    finally:
        router.close()


def server_from_env() -> str | None:
    """The model server the environment points every role (or one role) at, if any."""
    names = ["THERAMIND_BASE_URL", *(f"THERAMIND_{r.upper()}_BASE_URL" for r in ROLES)]
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def exit_interrupted(console: Console, message: str) -> NoReturn:
    """Finish a Ctrl-C cleanly: no second interrupt mid-cleanup, models freed, exit code 130.

    Call it once the work has stopped (the runner lets its calls in flight finish first);
    in-process models are freed here, with no thread left inside them, rather than by the
    interpreter's teardown.
    """
    from theramind.llm.backends import interrupt_backends

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    interrupt_backends()
    if "theramind.llm.backends.llamacpp" in sys.modules:
        from theramind.llm.backends.llamacpp import release_models

        release_models()
    console.print(f"[yellow]{escape(message)}[/yellow]")
    raise typer.Exit(code=EXIT_INTERRUPTED)


def print_validity(console: Console, run_dir: Path | str) -> int:
    """Print whether a run is complete and valid; return the exit code `simulate` ends with.

    0: complete and valid. 3 (`EXIT_INVALID`): too many model calls fell back, so the results
    are no evidence. 4 (`EXIT_INCOMPLETE`): sessions are missing (a patient failed); rerun.
    """
    from theramind.simulation.validity import EXIT_INCOMPLETE, EXIT_INVALID, assess_run

    validity = assess_run(run_dir)
    if validity.valid and validity.complete:
        console.print(f"[green]{escape(validity.verdict())}[/green]", soft_wrap=True)
        return 0
    console.print(f"[bold red]{escape(validity.verdict())}[/bold red]", soft_wrap=True)
    if not validity.valid:
        console.print(
            "[bold red]INVALID RUN: its results are built from fallbacks, not from the models. "
            "Check the model servers (and `limits.max_fallback_rate`) and run it again.[/bold red]"
        )
        return EXIT_INVALID
    return EXIT_INCOMPLETE


def fail(console: Console, exc: Exception) -> typer.Exit:
    """Print an error for the user and return the exit (code 1) to raise."""
    console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
    return typer.Exit(code=1)


def say(console: Console, who: str, text: str, note: str = "") -> None:
    """Print one line of a dialogue: the speaker, the words and an optional dim note."""
    color = "cyan" if who == "Counselor" else "green"
    tail = f"  [dim]({escape(note)})[/dim]" if note else ""
    console.print(f"[{color}]{escape(who)}:[/{color}] {escape(text)}{tail}")


def release_embedded_models() -> None:
    """Free cached llama.cpp models now; freed at interpreter exit they print a traceback."""
    from theramind.llm.backends.llamacpp import release_models

    release_models()
