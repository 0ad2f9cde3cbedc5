"""Exception types raised by the framework, each with a message a user can act on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from theramind.llm.types import Usage


class TheraMindError(Exception):
    """Base class of every error the framework raises on purpose."""


class ConfigError(TheraMindError):
    """A configuration file or value is missing or invalid."""


class InputError(TheraMindError, ValueError):
    """A caller passed a value the framework cannot accept (empty, oversized, wrong type)."""


class UnknownPatientError(TheraMindError, KeyError):
    """No patient with this id is known."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown patient"


class SessionClosedError(TheraMindError):
    """A message was sent to a session that has already closed."""


class SessionStateError(TheraMindError, RuntimeError):
    """A session operation was called in a state that does not allow it.

    A `RuntimeError` too, so servers that hide unknown exceptions (`langgraph dev`) still
    show its message, which says what to do.
    """


class SessionBusyError(TheraMindError):
    """Another writer holds this session (another process or handle); nothing was stored.

    Wait for it to finish (`start_session(..., wait=seconds)`), or close the other handle.
    """


class ModelError(TheraMindError):
    """A model call failed after its retries."""


class ModelUnavailableError(ModelError):
    """The model endpoint cannot be reached (named in the message with what to run)."""


class StructuredOutputError(ModelError):
    """A model kept returning output that does not validate, and no fallback was given.

    Carries what the attempts left: how many there were, each validation (or model) error,
    the last raw text the model sent, and the usage of all attempts together.
    """

    def __init__(
        self,
        message: str,
        *,
        attempts: int = 0,
        errors: Sequence[str] = (),
        raw: str = "",
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.errors = list(errors)
        self.raw = raw
        self.usage = usage


class MemoryScopeError(TheraMindError, ValueError):
    """A memory read or write was attempted without a patient id."""


class SimulationError(TheraMindError, RuntimeError):
    """A simulated session broke the harness's own contract (a step without its state).

    A bug in a counselor or patient implementation, not in the run's input: the track fails
    with this message and the rest of the run goes on.
    """
