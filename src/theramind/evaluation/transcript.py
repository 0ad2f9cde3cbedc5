"""What a judge sees: only the words said, under neutral speaker labels and an opaque id.

Everything the counselor decided internally (strategy, perception, therapy labels, phase, risk
fields, recalled memories, reasoning) and everything the simulator hides (attitude, latent
state) stays out, and so does the counselor's name: a judge cannot tell which system spoke.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

from theramind.evaluation.runs import Course, SessionView

COUNSELOR = "Counselor"
CLIENT = "Client"
MASK = "the counselor"
FRAMEWORK_NAMES = ("TheraMind",)
OMITTED = "[... {n} lines omitted ...]"


def opaque_id(*parts: object) -> str:
    """Return a short id that hides what it was made from (a counselor name, a seed...)."""
    text = "\x1f".join(str(p) for p in parts)
    return "t-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def _identifier_like(name: str) -> bool:
    """Whether a name reads as a system label (theramind_v2, FixedTherapy), not a plain word."""
    return bool(re.search(r"[_\-0-9]", name)) or name != name.lower()


def name_masker(names: Iterable[str]) -> re.Pattern[str]:
    """Return a pattern matching counselor names as whole words.

    The framework's own names are always masked; counselor labels only when they look like
    labels, so a counselor named "plain" does not blank the word out of the dialogue.
    """
    chosen = [n for n in names if len(n) >= 3 and _identifier_like(n)]
    words = sorted({*chosen, *FRAMEWORK_NAMES}, key=len, reverse=True)
    alternation = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?<![A-Za-z0-9]){alternation}(?![A-Za-z0-9])", re.IGNORECASE)


def clean(text: str, masker: re.Pattern[str]) -> str:
    """Collapse whitespace and replace any counselor name."""
    return masker.sub(MASK, " ".join(text.split()))


def session_lines(session: SessionView, masker: re.Pattern[str]) -> list[str]:
    """Render one session as speaker-labelled lines: the opening, then each round's two turns."""
    opening = session.log.opening or (session.turns[0].prompt if session.turns else "")
    lines = [f"{COUNSELOR}: {clean(opening, masker)}"] if opening.strip() else []
    for turn in session.turns:
        lines.append(f"{CLIENT}: {clean(turn.patient.text, masker)}")
        lines.append(f"{COUNSELOR}: {clean(turn.response.reply, masker)}")
    return lines


def fit_lines(lines: Sequence[str], budget: int) -> list[str]:
    """Keep the first and last lines within `budget` characters, marking what was left out."""
    if sum(len(x) + 1 for x in lines) <= budget or len(lines) <= 2:
        return list(lines)
    head: list[str] = []
    tail: list[str] = []
    used = len(OMITTED) + 8
    i, j = 0, len(lines) - 1
    while i <= j:
        take_head = len(head) <= len(tail)
        line = lines[i] if take_head else lines[j]
        if used + len(line) + 1 > budget:
            break
        used += len(line) + 1
        if take_head:
            head.append(line)
            i += 1
        else:
            tail.append(line)
            j -= 1
    omitted = len(lines) - len(head) - len(tail)
    middle = [OMITTED.format(n=omitted)] if omitted else []
    return [*head, *middle, *reversed(tail)]


def render_session(
    course: Course, session_no: int, *, names: Iterable[str] = (), max_chars: int = 12000
) -> tuple[str, str]:
    """Return a session's judge transcript and its opaque id."""
    session = course.session(session_no)
    tid = opaque_id(course.experiment, course.key.slug, session_no)
    lines = fit_lines(
        session_lines(session, name_masker([course.key.counselor, *names])), max_chars
    )
    return "\n".join(lines), tid


def render_course(
    course: Course,
    *,
    names: Iterable[str] = (),
    max_chars: int = 12000,
    upto: int | None = None,
) -> tuple[str, str]:
    """Return the transcript of a course (sessions 1..`upto`) and its opaque id.

    Over `max_chars`, each session keeps its first and last lines within an equal share.
    """
    masker = name_masker([course.key.counselor, *names])
    sessions = [s for s in course.sessions if upto is None or s.session_no <= upto]
    share = max(400, max_chars // max(1, len(sessions)))
    blocks = []
    for s in sessions:
        lines = fit_lines(session_lines(s, masker), share - 20)
        blocks.append("\n".join([f"Session {s.session_no}", *lines]))
    tid = opaque_id(course.experiment, course.key.slug, "course", len(sessions))
    return "\n\n".join(blocks), tid
