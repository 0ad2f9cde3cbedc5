"""The counselor's opening words for a session, written for the patient from the session plan."""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, field_validator

from theramind.config import validate_file
from theramind.config_files import config_base, config_file
from theramind.records import RiskEvent, SessionPlan
from theramind.strict import Strict

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "en"
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


class Greeting(Strict):
    """A greeting with and without the patient's name."""

    named: str = Field(min_length=1)
    unnamed: str = Field(min_length=1)


class FirstSession(Greeting):
    """The first session's opening: a greeting, then an invitation to talk."""

    body: str = Field(min_length=1)


class Decisions(Strict):
    """One sentence per therapy decision that set this session's approach."""

    start: str
    keep: str
    adjust: str
    switch: str


class RiskCheckIn(Strict):
    """The check-in said when a risk the patient shared is still open."""

    about: str
    unspecified: str
    question: str
    categories: dict[str, str] = Field(default_factory=dict)


class Approach(Strict):
    """A therapy as the patient hears of it."""

    name: str | None = None
    about: str | None = None


class OpeningPhrases(Strict):
    """The contents of `configs/locales/<lang>/opening.yaml`."""

    first_session: FirstSession
    welcome: Greeting
    decision: Decisions
    explain: str
    phase: str
    focus: str
    question: str
    risk: RiskCheckIn
    joiner: str = " and "
    approaches: dict[str, Approach] = Field(default_factory=dict)
    phases: dict[str, str] = Field(default_factory=dict)
    focus_max_words: int = Field(default=12, ge=1)
    focus_max_chars: int = Field(default=100, ge=1)
    focus_require: str = ""
    focus_reject: str = ""

    @field_validator("focus_require", "focus_reject")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return value


_LOCK = threading.Lock()


@functools.lru_cache(maxsize=16)
def _load(path: Path) -> OpeningPhrases:
    return validate_file(path, OpeningPhrases)


def opening_phrases(
    language: str = DEFAULT_LANGUAGE, config_dir: Path | None = None
) -> OpeningPhrases:
    """Load (once) the opening phrases of a language; one without a file gets English."""
    base = config_base(config_dir)
    lang = (language or DEFAULT_LANGUAGE).strip().lower().replace("_", "-").split("-")[0]
    found = config_file(base / "locales" / lang / "opening.yaml") if _LANGUAGE.match(lang) else None
    if found is None:
        if lang != DEFAULT_LANGUAGE:
            log.warning("no opening phrases for language %r; using %r", language, DEFAULT_LANGUAGE)
        english = base / "locales" / DEFAULT_LANGUAGE / "opening.yaml"
        found = config_file(english) or english  # a missing English file: validate_file says so
    with _LOCK:
        return _load(found)


def plain_focus(focus: str, phrases: OpeningPhrases, hidden: tuple[str, ...] = ()) -> str | None:
    """Return the focus if it reads as plain words for the patient, else None.

    The focus is written by and for the counselor; it may be a pasted clinician field, in the
    third person or cut short. It is never cut here: a focus that does not pass is left out.
    """
    text = " ".join(focus.split())
    if "..." in text or any(c in text for c in ":;：；…()"):
        return None
    text = text.rstrip(".。 ")
    if not text or len(text) > phrases.focus_max_chars:
        return None
    if len(text.split()) > phrases.focus_max_words:
        return None
    if phrases.focus_require and not re.search(phrases.focus_require, text):
        return None
    if phrases.focus_reject and re.search(phrases.focus_reject, text):
        return None
    words = {w.lower() for w in re.findall(r"\w+", text)}
    if any(h.lower() in words for h in hidden):
        return None
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    return text


def _approach(therapies: list[str], phrases: OpeningPhrases, names: Mapping[str, str]) -> str:
    def name(tid: str) -> str:
        known = phrases.approaches.get(tid)
        return (known.name if known and known.name else None) or names.get(tid) or tid

    return phrases.joiner.join(name(t) for t in therapies)


def _about(plan: SessionPlan, phrases: OpeningPhrases) -> str | None:
    """Return what the approach new in this session means, for a switch, adjust or start."""
    new = [t for t in plan.therapies if t not in plan.previous_therapies] or plan.therapies
    for tid in new:
        known = phrases.approaches.get(tid)
        if known and known.about:
            return known.about
    return None


def _check_in(event: RiskEvent, phrases: OpeningPhrases) -> str:
    risk = phrases.risk
    about = next((risk.categories[c] for c in event.categories if c in risk.categories), None)
    first = risk.about.format(about_risk=about) if about else risk.unspecified
    return f"{first}{_space(phrases)}{risk.question}"


def _space(phrases: OpeningPhrases) -> str:
    """Return the sentence separator: none between sentences of a language without spaces."""
    return "" if phrases.question[-1:] in "。？！" else " "


def opening_line(
    plan: SessionPlan,
    names: Mapping[str, str],
    *,
    language: str = DEFAULT_LANGUAGE,
    config_dir: Path | None = None,
) -> str:
    """Write the counselor's opening of a session for the patient, from its plan.

    Deterministic, so it works with every model down: a greeting (by name when one is known),
    the last therapy decision as the patient would put it (keep, adjust, switch), what this
    stage of the work is about, last session's focus when it reads as plain words, and a
    question; an open risk replaces the question with a check-in on the patient's safety.

    Args:
        plan: The session's plan (`last_action` names the decision that set its approach;
            without one the approach is stated without a decision).
        names: Therapy names by id, for approaches the language file does not name.
        language: The patient's language code (`en`, `zh`, ...); unknown ones get English.
        config_dir: The configuration directory (default: the bundled one).
    """
    phrases = opening_phrases(language, config_dir)
    name = " ".join(plan.pseudonym.split())
    space = _space(phrases)
    if plan.session_no == 1:
        first = phrases.first_session
        greeting = first.named.format(name=name) if name else first.unnamed
        rest = _check_in(plan.open_risk, phrases) if plan.open_risk is not None else first.body
        return space.join((greeting, rest))
    parts = [phrases.welcome.named.format(name=name) if name else phrases.welcome.unnamed]
    action = plan.last_action or "start"
    sentence = phrases.decision.model_dump()[action]
    parts.append(sentence.format(approach=_approach(plan.therapies, phrases, names)))
    if action != "keep" and (about := _about(plan, phrases)):
        parts.append(phrases.explain.format(about=about))
    if plan.open_risk is not None:
        parts.append(_check_in(plan.open_risk, phrases))
        return space.join(parts)
    if plan.phase in phrases.phases:
        parts.append(phrases.phase.format(phase=phrases.phases[plan.phase]))
    hidden = (plan.phase, *phrases.phases, *plan.therapies)
    if focus := plain_focus(plan.focus, phrases, hidden):
        parts.append(phrases.focus.format(focus=focus))
    parts.append(phrases.question)
    return space.join(parts)
