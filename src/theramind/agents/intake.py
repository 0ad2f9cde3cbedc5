"""What the team knows before session 1: the intake record as facts to remember and a focus."""

from __future__ import annotations

import re

from theramind.locales import PromptSet, english
from theramind.records import PatientProfile
from theramind.text import shorten

MAX_FACTS = 8
FACT_CHARS = 200
FOCUS_CHARS = 200
_SENTENCE = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*")


def sentences(text: str, limit: int = MAX_FACTS, chars: int = FACT_CHARS) -> list[str]:
    """Split free text into at most `limit` short sentences, each cut to `chars`."""
    out = []
    for part in _SENTENCE.split(" ".join(text.split())):
        part = part.strip(" ;")
        if len(part) < 3:
            continue
        out.append(shorten(part, chars))
        if len(out) == limit:
            break
    return out


def intake_facts(profile: PatientProfile, prompts: PromptSet | None = None) -> list[str]:
    """Return the intake record as short facts: presenting problem first, then the history."""
    label = (prompts or english()).text("intake.problem_prefix")
    facts = [f"{label}{s}" for s in sentences(profile.presenting_problem, 3)]
    return facts + sentences(profile.history, MAX_FACTS - len(facts))


def intake_focus(profile: PatientProfile, prompts: PromptSet | None = None) -> str:
    """Return the first session's focus: assessing the problem the patient came with."""
    if not profile.presenting_problem.strip():
        return ""
    label = (prompts or english()).text("intake.focus_prefix")
    return shorten(f"{label}{profile.presenting_problem}", FOCUS_CHARS)
