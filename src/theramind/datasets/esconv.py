"""ESConv / FailedESConv JSON: a list of emotional-support conversations with a seeker survey.

Each record has `emotion_type`, `problem_type`, `situation`, `survey_score.seeker.
initial_emotion_intensity` (1-5, absent in some records) and `dialog[{speaker, content,
annotation}]` with `speaker` either `seeker` or `supporter`. See docs/data.md for the mapping.
"""

from __future__ import annotations

import re
from typing import Any

from theramind.datasets.common import (
    Draft,
    RecordError,
    clip,
    read_json_records,
    safe_id,
    sentences,
    short_guidance,
    text_field,
)
from theramind.datasets.priors import (
    age_prior,
    fill_hidden,
    latent_from_intensity,
    name_prior,
    rng_for,
)

PROBLEM_CATEGORIES: dict[str, str] = {
    "ongoing depression": "emotion",
    "job crisis": "stress",
    "breakup with partner": "love",
    "problems with friends": "social",
    "academic pressure": "youth",
    "procrastination": "self-growth",
    "alcohol abuse": "addiction",
    "issues with parents": "family",
    "conflict with parents": "family",
    "issues with children": "family",
    "sleep problems": "stress",
    "appearance anxiety": "anxiety",
    "school bullying": "youth",
}
"""ESConv's problem types to the project's categories (lower-cased; documented in docs/data.md)."""
EMOTION_CATEGORIES: dict[str, str] = {
    "anxiety": "anxiety",
    "nervousness": "anxiety",
    "fear": "anxiety",
}
"""Fallback by emotion type when the problem type is missing or unknown; otherwise `emotion`."""
_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|my|me)\b", re.IGNORECASE)
SEEKER = "seeker"


def read(path: Any) -> list[tuple[str, Any]]:
    """Read the records of an ESConv JSON file."""
    return read_json_records(path)


def _intensity(record: dict[str, Any]) -> float | None:
    survey = record.get("survey_score")
    if survey is None:
        return None
    if not isinstance(survey, dict):
        raise RecordError("survey_score", "expected an object")
    seeker = survey.get("seeker") or {}
    if not isinstance(seeker, dict):
        raise RecordError("survey_score.seeker", "expected an object")
    raw = seeker.get("initial_emotion_intensity")
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise RecordError(
            "survey_score.seeker.initial_emotion_intensity", f"not a number: {raw!r}"
        ) from exc
    if not 1.0 <= value <= 5.0:
        raise RecordError(
            "survey_score.seeker.initial_emotion_intensity", f"{value} is outside 1..5"
        )
    return value


def seeker_turns(record: dict[str, Any]) -> list[str]:
    """Return the seeker's own turns; a malformed dialog is an error naming the turn."""
    dialog = record.get("dialog")
    if dialog is None:
        return []
    if not isinstance(dialog, list):
        raise RecordError("dialog", "expected a list of turns")
    turns = []
    for i, turn in enumerate(dialog):
        if not isinstance(turn, dict):
            raise RecordError(f"dialog[{i}]", "expected an object with speaker and content")
        content = turn.get("content")
        if not isinstance(content, str):
            raise RecordError(f"dialog[{i}].content", "missing or not text")
        if str(turn.get("speaker", "")).lower() in (SEEKER, "usr", "user"):
            turns.append(content.strip())
    return [t for t in turns if t]


def concerns_from(turns: list[str], situation: str) -> list[str]:
    """Pick up to three first-person sentences of the seeker, longest first, in their words."""
    candidates = [s for t in turns for s in sentences(t) if _FIRST_PERSON.search(s)]
    candidates = [c for c in candidates if 4 <= len(c.split()) <= 40]
    unique = list(dict.fromkeys(candidates))
    chosen = sorted(unique, key=len, reverse=True)[:3]
    return [clip(c, 160) for c in chosen] or [clip(sentences(situation)[0], 160)]


def style_from(turns: list[str]) -> str:
    """Infer a speaking style from the seeker's turns: length and emphasis."""
    if not turns:
        return "plain"
    words = sum(len(t.split()) for t in turns) / len(turns)
    emphatic = sum(t.count("!") for t in turns) / len(turns)
    if emphatic >= 0.5:
        return "upset"
    if words >= 25:
        return "verbose"
    if words <= 6:
        return "reserved"
    return "plain"


def category_for(problem: str, emotion: str) -> tuple[str, bool]:
    """Return the category and whether it came from the fallback rather than the problem type."""
    key = problem.strip().lower()
    if key in PROBLEM_CATEGORIES:
        return PROBLEM_CATEGORIES[key], False
    return EMOTION_CATEGORIES.get(emotion.strip().lower(), "emotion"), True


def convert(record: Any, ref: str, seed: int) -> Draft:
    """Turn one ESConv record into a profile draft.

    Raises:
        RecordError: the record is not an object, a field has the wrong type, or it holds
            neither a situation nor any seeker turn.
    """
    if not isinstance(record, dict):
        raise RecordError("record", f"expected an object, got {type(record).__name__}")
    emotion = text_field(record, "emotion_type")
    problem = text_field(record, "problem_type")
    situation = text_field(record, "situation")
    turns = seeker_turns(record)
    intensity = _intensity(record)
    draft = Draft(data={"id": safe_id("esconv", ref)})
    rng = rng_for(seed, f"esconv:{ref}")
    if not situation:
        if not turns:
            raise RecordError("situation", "missing, and the dialog has no seeker turn to use")
        situation = turns[0]
        draft.defaulted.append("current_problems")
    category, fallback = category_for(problem, emotion)
    if fallback:
        draft.defaulted.append("category")
    draft.default("pseudonym", name_prior(rng))
    draft.default("age", age_prior(rng))
    draft.data.update(
        category=category,
        current_problems=clip(situation, 800),
        concerns=concerns_from(turns, situation),
    )
    if turns:
        draft.data["style"] = style_from(turns)
    else:
        draft.default("style", "plain")
    draft.default("mental_health_history", "Not recorded in the source.")
    draft.default("physical_health_history", "Not recorded in the source.")
    symptoms = [f"feeling {emotion.lower()}" if emotion else "low mood"]
    if not emotion:
        draft.defaulted.append("symptoms")
    if problem:
        symptoms.append(problem.lower())
    draft.data["symptoms"] = symptoms
    topic = problem.lower() or "what has been happening"
    draft.data["guidance"] = [
        short_guidance(f"I want to talk about {topic}. I'm not sure the counselor will get it."),
        short_guidance("I felt a bit heard last time. I might say more about how it affects me."),
        short_guidance("I want to find one small thing I can do differently this week."),
    ]
    draft.defaulted.append("guidance")
    if intensity is not None:
        draft.data["latent"] = latent_from_intensity(category, intensity, rng)
    fill_hidden(draft.data, draft.defaulted, category, rng)
    draft.notes = f"emotion_type={emotion or '?'}; problem_type={problem or '?'}"
    return draft
