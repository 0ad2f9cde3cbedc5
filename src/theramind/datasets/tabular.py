"""Anything else: JSONL (an object a line) or CSV (a row a record), with a field mapping.

The mapping names, per profile field, the column (CSV) or key (JSONL, dots for nested keys)
that holds it; fields it does not name are looked up under their own name. Only
`current_problems` is required; list fields (`symptoms`, `concerns`, `guidance`) take a JSON
list or, in CSV, texts separated by `;` (`|` also works). Everything else that is missing
comes from the documented defaults and priors. See docs/data.md.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from theramind.datasets.common import Draft, RecordError, clip, safe_id, short_guidance
from theramind.datasets.priors import age_prior, fill_hidden, name_prior, rng_for
from theramind.errors import InputError
from theramind.simulation.profiles import CATEGORIES, STYLES

FIELDS = (
    "id",
    "pseudonym",
    "age",
    "gender",
    "language",
    "category",
    "style",
    "current_problems",
    "mental_health_history",
    "physical_health_history",
    "symptoms",
    "concerns",
    "guidance",
    "phq9",
    "gad7",
)
LISTS = ("symptoms", "concerns", "guidance")
_SPLIT = re.compile(r"\s*[;|]\s*")


def check_mapping(mapping: Mapping[str, str]) -> dict[str, str]:
    """Return the mapping, or raise InputError naming a field the profile does not have."""
    unknown = sorted(set(mapping) - set(FIELDS))
    if unknown:
        raise InputError(f"--map: unknown profile fields {unknown}; map any of {list(FIELDS)}")
    return dict(mapping)


def read_jsonl(path: Path) -> list[tuple[str, Any]]:
    """Read JSONL records; a line that is not JSON becomes a record the converter rejects."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    out: list[tuple[str, Any]] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append((f"line-{n}", json.loads(line)))
        except json.JSONDecodeError as exc:
            out.append((f"line-{n}", RecordError("record", f"not JSON: {exc.msg}")))
    return out


def read_csv(path: Path) -> list[tuple[str, Any]]:
    """Read CSV rows as records (refs are row numbers, the header being row 1)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read as CSV: {exc}") from exc
    return [(f"row-{i}", row) for i, row in enumerate(rows, start=2)]


def _get(record: dict[str, Any], key: str) -> Any:
    value: Any = record
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _list(value: Any, name: str) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return _list(json.loads(text), name)
            except json.JSONDecodeError as exc:
                raise RecordError(name, f"looks like a JSON list but is not: {exc.msg}") from exc
        return [p for p in _SPLIT.split(text) if p]
    raise RecordError(name, f"expected a list or text, got {type(value).__name__}")


def _int(value: Any, name: str) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError) as exc:
        raise RecordError(name, f"not a number: {value!r}") from exc


def convert(record: Any, ref: str, seed: int, mapping: Mapping[str, str] | None = None) -> Draft:
    """Turn one mapped record into a profile draft.

    Raises:
        RecordError: not an object, no `current_problems`, or a value of the wrong kind; the
            error names the profile field and, where it differs, the source column.
    """
    if isinstance(record, RecordError):
        raise record
    if not isinstance(record, dict):
        raise RecordError("record", f"expected an object, got {type(record).__name__}")
    mapping = mapping or {}
    values: dict[str, Any] = {}
    for name in FIELDS:
        column = mapping.get(name, name)
        value = _get(record, column)
        if value is not None and value != "":
            values[name] = (value, name if column == name else f"{name} (from {column})")
    if "current_problems" not in values:
        column = mapping.get("current_problems", "current_problems")
        raise RecordError(column, "missing; map the column that describes the problem")
    ident = str(values.pop("id", (ref, ""))[0])
    draft = Draft(data={"id": safe_id("import", ident)})
    rng = rng_for(seed, f"tabular:{ident}")
    problem, _ = values.pop("current_problems")
    draft.data["current_problems"] = clip(str(problem), 800)
    language = str(values.get("language", ("en", ""))[0]).strip().lower()
    draft.data["language"] = draft.language = language
    category = str(values.get("category", ("", ""))[0]).strip().lower()
    if category not in CATEGORIES:
        if category:
            raise RecordError(values["category"][1], f"{category!r} is not one of {CATEGORIES}")
        category = "emotion"
        draft.defaulted.append("category")
    draft.data["category"] = category
    style = str(values.get("style", ("", ""))[0]).strip().lower()
    if style and style not in STYLES:
        raise RecordError(values["style"][1], f"{style!r} is not one of {STYLES}")
    if style:
        draft.data["style"] = style
    else:
        draft.default("style", "plain")
    for name, default in (("pseudonym", name_prior(rng, language)), ("age", age_prior(rng))):
        if name in values:
            value, where = values[name]
            draft.data[name] = _int(value, where) if name == "age" else clip(str(value), 40)
        else:
            draft.default(name, default)
    if "gender" in values:
        draft.data["gender"] = clip(str(values["gender"][0]), 30)
    for name in ("mental_health_history", "physical_health_history"):
        if name in values:
            draft.data[name] = clip(str(values[name][0]), 600)
        else:
            draft.default(name, "Not recorded in the source.")
    lists = {n: _list(values[n][0], values[n][1]) for n in LISTS if n in values}
    defaults = {
        "symptoms": ["low mood"],
        "concerns": [clip(str(problem), 160)],
        "guidance": [short_guidance("I want to talk about what brought me here.")],
    }
    for name in LISTS:
        items = lists.get(name) or []
        if name == "guidance":
            items = [short_guidance(g) for g in items]
        if items:
            draft.data[name] = items[:12] if name == "guidance" else items[:6]
        else:
            draft.default(name, defaults[name])
    if "phq9" in values and "gad7" in values:
        draft.data["latent"] = {
            "phq9": _int(values["phq9"][0], values["phq9"][1]),
            "gad7": _int(values["gad7"][0], values["gad7"][1]),
        }
    fill_hidden(draft.data, draft.defaulted, category, rng)
    draft.notes = "mapped: " + ", ".join(f"{k}={v}" for k, v in sorted(mapping.items()))
    return draft
