"""Checks on what callers send, in one place: messages, profiles and session numbers.

Everything here raises `InputError` with a message that says what is wrong, before anything is
written. The session graph's `screen` node calls `validate_message` too, so a turn sent to a
graph server is held to the same rules as one sent through `Session.respond`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from theramind.errors import InputError
from theramind.records import PatientProfile
from theramind.text_checks import text_problem

MAX_SESSION_NO = 1_000_000
"""Far beyond any course of counseling; larger numbers are mistakes (and overflow SQLite)."""

_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Mc", "Me", "Mn", "Zl", "Zp", "Zs"})
"""Controls, format characters (zero-width, BOM, tags), surrogates, combining marks and
separators: text made only of these shows nothing."""
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Hangul fillers and the blank braille pattern: letters or symbols that render as nothing."""


def check_text(text: str, what: str) -> str:
    """Return `text` if it can be stored and sent to a model, or raise `InputError`.

    NUL characters and lone surrogates (not valid Unicode, so no backend can encode them) are
    refused.
    """
    problem = text_problem(text)
    if problem:
        raise InputError(f"{what} {problem}")
    return text


def has_visible(text: str) -> bool:
    """Return whether any character of `text` would show on screen."""
    return any(
        ch not in _BLANK_LETTERS and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES
        for ch in text
    )


def validate_message(text: object, limit: int) -> str:
    """Return a patient message or raise `InputError` saying what is wrong with it."""
    if not isinstance(text, str):
        raise InputError(f"message must be a string, not {type(text).__name__}")
    if len(text) > limit:
        raise InputError(f"message is {len(text)} characters; the limit is {limit}")
    if not text.strip():
        raise InputError("message is empty")
    check_text(text, "message")
    if not has_visible(text):
        raise InputError(
            "message has no visible characters (only spaces, zero-width, format or combining "
            "characters)"
        )
    return text


def parse_profile(profile: object) -> PatientProfile:
    """Return a validated `PatientProfile` from a profile or a mapping.

    Raises:
        InputError: not a profile, or a field is missing, too long or holds bad text (named).
    """
    if isinstance(profile, PatientProfile):
        data: dict[str, Any] = profile.model_dump()
    elif isinstance(profile, Mapping):
        data = dict(profile)
    else:
        raise InputError("profile must be a PatientProfile or a mapping")
    try:
        return PatientProfile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'profile'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise InputError(f"invalid patient profile: {problems}") from None


def check_session_no(value: object, what: str = "session number") -> int:
    """Return a session number (an int from 1 to `MAX_SESSION_NO`) or raise `InputError`."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SESSION_NO:
        raise InputError(f"{what} must be an int from 1 to {MAX_SESSION_NO}, not {value!r}")
    return value
