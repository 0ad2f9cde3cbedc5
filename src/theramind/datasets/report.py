"""Free-text case reports (CPsyCounR-style), extracted into the profile schema by a model.

A record is an object with some of `title`, `type`, `method`, `case_brief` and `process`
(Chinese keys 标题, 类型, 方法, 案例简述, 咨询过程 also work), or the whole report as one
text. The `patient` model role reads it and fills `ExtractedCase` through the project's
validated structured output (parse, repair, bounded retries). When no valid extraction comes
back, the profile is built from the report's own text by rule and every field the model
should have given is marked as defaulted, with the reason in the source notes: a bad record
or a failing model never stops the import.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from theramind.datasets.common import Draft, RecordError, clip, read_json_records, safe_id
from theramind.datasets.common import short_guidance as _short
from theramind.datasets.priors import age_prior, fill_hidden, name_prior, rng_for
from theramind.datasets.psycheval import category_for, language_of, problem_parts
from theramind.llm import Message, ModelRouter
from theramind.simulation.profiles import Category, Style

log = logging.getLogger(__name__)

ROLE = "patient"
PARTS: dict[str, tuple[str, ...]] = {
    "title": ("title", "标题"),
    "type": ("type", "类型"),
    "method": ("method", "方法"),
    "case_brief": ("case_brief", "brief", "案例简述"),
    "process": ("process", "咨询过程"),
}
MAX_REPORT_CHARS = 6000
SYSTEM = (
    "You turn a counseling case report into a simulated client's profile. Use only what the "
    "report says; leave a field empty (or null) when the report does not give it. Write in "
    "the report's language. concerns are the client's worries in the first person, in their "
    "own voice. guidance holds one short line per session, in the client's voice, saying "
    "what the client brings to that session, following the course the report describes."
)


class ExtractedCase(BaseModel):
    """What a model reads out of a case report (every field may be left empty)."""

    model_config = ConfigDict(extra="ignore")

    pseudonym: str = Field(default="", max_length=40)
    age: int | None = Field(default=None, ge=12, le=100)
    gender: str = Field(default="", max_length=30)
    category: Category | None = None
    style: Style | None = None
    current_problems: str = Field(default="", max_length=800)
    mental_health_history: str = Field(default="", max_length=800)
    physical_health_history: str = Field(default="", max_length=600)
    symptoms: list[str] = Field(default_factory=list, max_length=10)
    concerns: list[str] = Field(default_factory=list, max_length=6)
    guidance: list[str] = Field(default_factory=list, max_length=12)


def read(path: Any) -> list[tuple[str, Any]]:
    """Read the reports of a JSON file (one report or a list; each an object or a text)."""
    return read_json_records(path)


def report_parts(record: Any) -> dict[str, str]:
    """Return the report's parts by name; a bare text is the case brief.

    Raises:
        RecordError: neither a text nor an object, or no text at all.
    """
    if isinstance(record, str):
        parts = {"case_brief": record.strip()}
    elif isinstance(record, dict):
        parts = {}
        for name, keys in PARTS.items():
            for key in keys:
                value = record.get(key)
                if isinstance(value, str) and value.strip():
                    parts[name] = value.strip()
                    break
                if value is not None and not isinstance(value, str):
                    raise RecordError(key, f"expected text, got {type(value).__name__}")
    else:
        raise RecordError(
            "record", f"expected a report object or text, not {type(record).__name__}"
        )
    if not parts.get("case_brief") and not parts.get("process"):
        raise RecordError("case_brief", "missing; a report needs a case brief or a process")
    return parts


def extract(router: ModelRouter, parts: dict[str, str]) -> tuple[ExtractedCase | None, str]:
    """Ask the `patient` role for the profile fields; None and the reason when it fails."""
    text = "\n\n".join(f"[{name}]\n{value}" for name, value in parts.items())
    messages: list[Message] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": clip(text, MAX_REPORT_CHARS)},
    ]
    try:
        result = router.structured(ROLE, messages, ExtractedCase, max_tokens=900)
    except Exception as exc:  # a failing model marks the record, it never stops the import
        log.warning("report extraction failed: %s", exc)
        return None, f"{type(exc).__name__}: {exc}"
    return result.value, ""


def convert(record: Any, ref: str, seed: int, router: ModelRouter | None = None) -> Draft:
    """Turn one report into a draft: the model's extraction, rule-based where it gave nothing.

    Raises:
        RecordError: the record is not a report (named field), or no router was given.
    """
    parts = report_parts(record)
    if router is None:
        raise RecordError("report", "no model router: the report format needs the patient role")
    language = language_of(list(parts.values()))
    got, failure = extract(router, parts)
    case = got or ExtractedCase()
    draft = Draft(data={"id": safe_id("report", ref), "language": language}, language=language)
    rng = rng_for(seed, f"report:{ref}")
    brief = parts.get("case_brief") or parts.get("process", "")
    topic = " ".join(filter(None, (parts.get("type"), parts.get("title"))))
    not_recorded = "资料中未记录。" if language == "zh" else "Not recorded in the source."
    rule_category, _ = category_for(topic, brief)
    defaults: dict[str, Any] = {
        "pseudonym": name_prior(rng, language),
        "age": age_prior(rng),
        "category": rule_category,
        "style": "plain",
        "current_problems": clip(brief, 800),
        "mental_health_history": not_recorded,
        "physical_health_history": not_recorded,
        "symptoms": problem_parts(brief) or [clip(brief, 80)],
        "concerns": [clip(brief, 160)],
        "guidance": [_short(brief)],
    }
    for name in ExtractedCase.model_fields:
        value = getattr(case, name)
        if isinstance(value, list):
            value = [clip(v, 160) for v in value if isinstance(v, str) and len(v.strip()) >= 2]
            if name == "guidance":
                value = [_short(v) for v in value]
        elif isinstance(value, str):
            value = value.strip()
        if value in (None, "", []):
            if name in defaults:
                draft.default(name, defaults[name])
        else:
            draft.data[name] = value
    fill_hidden(draft.data, draft.defaulted, draft.data["category"], rng)
    method = parts.get("method", "")
    note = f"extraction failed ({failure})" if got is None else "extracted by the patient role"
    draft.notes = clip(f"{note}; type={parts.get('type', '?')}; method={method or '?'}", 400)
    return draft
