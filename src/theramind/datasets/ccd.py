"""Patient-Ψ-style cognitive conceptualization diagrams (CCD): a CBT case model per record.

A record gives `history`, `core_beliefs`, `intermediate_beliefs`, `coping_strategies`,
`situation`, `automatic_thoughts`, `emotions` and `behaviors` (or `behaviours`), each text or
a list of texts, and optionally `id`, `type` (a conversational style) and `name`. The case
model becomes a patient who first talks about the situation and only with trust reaches the
beliefs underneath. See docs/data.md for the mapping.
"""

from __future__ import annotations

from typing import Any

from theramind.datasets.common import (
    Draft,
    RecordError,
    clip,
    read_json_records,
    safe_id,
    short_guidance,
    text_items,
)
from theramind.datasets.priors import age_prior, fill_hidden, name_prior, rng_for
from theramind.simulation.profiles import STYLES

KEYWORDS: tuple[tuple[str, str], ...] = (
    ("drink", "addiction"),
    ("alcohol", "addiction"),
    ("gambl", "addiction"),
    ("partner", "love"),
    ("girlfriend", "love"),
    ("boyfriend", "love"),
    ("husband", "love"),
    ("wife", "love"),
    ("mother", "family"),
    ("father", "family"),
    ("parent", "family"),
    ("son", "family"),
    ("daughter", "family"),
    ("school", "youth"),
    ("exam", "youth"),
    ("friend", "social"),
    ("party", "social"),
    ("boss", "stress"),
    ("work", "stress"),
    ("job", "stress"),
    ("anxious", "anxiety"),
    ("panic", "anxiety"),
    ("worried", "anxiety"),
    ("sad", "emotion"),
    ("hopeless", "emotion"),
)
"""Keywords of the situation, then the emotions, to categories (first match; else emotion)."""


def read(path: Any) -> list[tuple[str, Any]]:
    """Read the records of a CCD JSON file (one record or a list)."""
    return read_json_records(path)


def category_for(situation: str, emotions: list[str]) -> tuple[str, bool]:
    """Return the category from keywords and whether it was the fallback."""
    for text in (situation, " ".join(emotions)):
        low = text.lower()
        for word, category in KEYWORDS:
            if word in low:
                return category, False
    return "emotion", True


def _items(record: dict[str, Any], *names: str) -> list[str]:
    for name in names:
        if name in record:
            return text_items(record[name], name)
    return []


def convert(record: Any, ref: str, seed: int) -> Draft:
    """Turn one cognitive conceptualization into a profile draft.

    Raises:
        RecordError: not an object, no situation, or a field of the wrong shape (named).
    """
    if not isinstance(record, dict):
        raise RecordError("record", f"expected an object, got {type(record).__name__}")
    situation = " ".join(_items(record, "situation"))
    if not situation:
        raise RecordError("situation", "missing; a case model needs the situation it is about")
    history = _items(record, "history", "relevant_history")
    core = _items(record, "core_beliefs", "core_belief")
    intermediate = _items(record, "intermediate_beliefs", "intermediate_belief")
    coping = _items(record, "coping_strategies")
    thoughts = _items(record, "automatic_thoughts")
    emotions = _items(record, "emotions", "emotion")
    behaviours = _items(record, "behaviors", "behaviours", "behavior")
    draft = Draft(data={"id": safe_id("ccd", ref)})
    rng = rng_for(seed, f"ccd:{ref}")
    category, fallback = category_for(situation, emotions)
    if fallback:
        draft.defaulted.append("category")
    name = record.get("name")
    if isinstance(name, str) and name.strip():
        draft.data["pseudonym"] = clip(name, 40)
    else:
        draft.default("pseudonym", name_prior(rng))
    draft.default("age", age_prior(rng))
    style = str(record.get("type") or record.get("style") or "").strip().lower()
    if style in STYLES:
        draft.data["style"] = style
    else:
        draft.default("style", "plain")
    if history:
        draft.data["mental_health_history"] = clip(" ".join(history), 800)
    else:
        draft.default("mental_health_history", "Not recorded in the source.")
    draft.default("physical_health_history", "Not recorded in the source.")
    draft.data["current_problems"] = clip(situation, 800)
    symptoms = [f"feeling {e.lower()}" for e in emotions[:3]] + [clip(b, 80) for b in behaviours]
    if symptoms:
        draft.data["symptoms"] = symptoms[:6]
    else:
        draft.default("symptoms", ["low mood"])
    concerns = [clip(t, 160) for t in thoughts[:3]] or [clip(b, 160) for b in core[:2]]
    if concerns:
        draft.data["concerns"] = concerns
    else:
        draft.default("concerns", [clip(situation, 160)])
    guidance = [short_guidance(f"I want to talk about what happened: {situation}")]
    if intermediate:
        guidance.append(short_guidance(f"I might say the rule I live by: {intermediate[0]}"))
    if coping:
        guidance.append(short_guidance(f"I could admit how I get by: {coping[0]}"))
    if core:
        guidance.append(short_guidance(f"Underneath, I fear this is true: {core[0]}"))
    draft.data["guidance"] = guidance
    disclosures = [
        {"text": clip(text, 240), "session": 2 + i, "after_round": 3, "trust": 0.55}
        for i, text in enumerate(b for b in core if len(b) >= 3)
        if i < 3
    ]
    draft.data["disclosures"] = disclosures
    fill_hidden(draft.data, draft.defaulted, category, rng)
    draft.data["category"] = category
    draft.notes = (
        f"core beliefs={len(core)}; intermediate={len(intermediate)}; coping={len(coping)}"
    )
    return draft
