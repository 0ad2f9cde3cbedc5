"""The shared side of every importer: record errors, drafts, text helpers, the import driver."""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from theramind.errors import InputError
from theramind.simulation.profiles import SimProfile
from theramind.text import cut_units

log = logging.getLogger(__name__)

MAX_GUIDANCE_CHARS = 160
"""Guidance is short; for languages written without spaces the word limit cannot apply."""


class RecordError(ValueError):
    """A record that cannot become a profile: names the field and what is wrong with it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass
class Draft:
    """A profile in the making: its fields, and which of them the source did not give."""

    data: dict[str, Any]
    defaulted: list[str] = field(default_factory=list)
    language: str = "en"
    notes: str = ""

    def default(self, name: str, value: Any) -> None:
        """Set a field from a prior or default and record that it was defaulted."""
        self.data[name] = value
        if name not in self.defaulted:
            self.defaulted.append(name)


@dataclass(frozen=True)
class Rejection:
    """A record left out of the import, with the field and the reason."""

    record: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"record {self.record}: {self.field}: {self.reason}"


@dataclass
class ImportResult:
    """What an import did: profiles written, fields defaulted (counted), records rejected."""

    written: list[Path] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    defaulted: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        """Return the closing line: counts and time."""
        fields = ", ".join(f"{k} {v}" for k, v in sorted(self.defaulted.items())) or "none"
        return (
            f"Imported {len(self.written)} profiles, rejected {len(self.rejected)} records, "
            f"in {self.seconds:.2f} s. Defaulted fields: {fields}."
        )


Reader = Callable[[Path], Iterable[tuple[str, Any]]]
Converter = Callable[[Any, str, int], Draft]


def clip(text: str, limit: int) -> str:
    """Return text with collapsed whitespace, cut at a word boundary to at most `limit` chars."""
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;") + "…"


def short_guidance(text: str, words: int = 40) -> str:
    """Return guidance within the profile's word limit (CJK counted as the profile counts it)."""
    text = clip(text, MAX_GUIDANCE_CHARS)
    cut, was_cut = cut_units(text, words - 1)
    return cut.rstrip(" ,;，；、") + "…" if was_cut else text


def text_items(value: Any, name: str) -> list[str]:
    """Return a list of texts from a string, a list of strings, or a list/dict of objects.

    Objects become their text values joined (keys left out), so loosely shaped case files
    still give their words; anything else is an error naming the field.
    """
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise RecordError(name, f"expected text or a list, got {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            text = item
        elif isinstance(item, dict):
            text = "；".join(str(v).strip() for v in item.values() if isinstance(v, str | int))
        elif isinstance(item, int | float):
            text = str(item)
        else:
            kind = type(item).__name__
            raise RecordError(f"{name}[{i}]", f"expected text or an object, got {kind}")
        if text.strip():
            out.append(text.strip())
    return out


def sentences(text: str) -> list[str]:
    """Split text into sentences (Latin and CJK punctuation)."""
    pieces = re.split(r"(?<=[.!?。！？])\s*", text)
    return [p.strip() for p in pieces if p.strip()]


def text_field(record: dict[str, Any], name: str, *, required: bool = False) -> str:
    """Return a string field; missing gives "" (or an error if required), non-string an error."""
    value = record.get(name)
    if value is None or value == "":
        if required:
            raise RecordError(name, "missing")
        return ""
    if not isinstance(value, str):
        raise RecordError(name, f"expected text, got {type(value).__name__}")
    return value.strip()


def safe_id(prefix: str, ref: str) -> str:
    """Return a profile id from a prefix and a record reference."""
    raw = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{prefix}-{ref}").strip("-")
    return raw[:64]


def read_json_records(path: Path) -> list[tuple[str, Any]]:
    """Read a JSON file holding a list of records (or one record); refs are indexes or ids."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON (line {exc.lineno}): {exc.msg}") from exc
    items = data if isinstance(data, list) else [data]
    out = []
    for i, item in enumerate(items):
        rid = item.get("id") if isinstance(item, dict) else None
        ref = str(rid) if isinstance(rid, str | int) and str(rid).strip() else str(i)
        out.append((ref, item))
    return out


def finish(
    draft: Draft, fmt: str, source: Path, ref: str, therapy_ids: Sequence[str]
) -> SimProfile:
    """Validate a draft into a profile that records its source; errors name the field."""
    data = dict(draft.data)
    data["source"] = {
        "format": fmt,
        "file": source.name,
        "record": ref[:80],
        "language": draft.language,
        "defaulted": sorted(draft.defaulted),
        "notes": draft.notes[:400],
    }
    try:
        profile = SimProfile.model_validate(data)
        profile.check_catalog(therapy_ids)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "profile"
        raise RecordError(where, first["msg"]) from exc
    except ValueError as exc:
        raise RecordError("responsiveness", str(exc)) from exc
    return profile


def dump_profile(profile: SimProfile, path: Path) -> None:
    """Write a profile as YAML, with a comment naming its source."""
    data = profile.model_dump(mode="json", exclude_defaults=False)
    src = profile.source
    header = f"# Imported from {src.file} record {src.record} ({src.format}).\n" if src else ""
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
    path.write_text(header + text, encoding="utf-8")


def run_import(
    reader: Reader,
    converter: Converter,
    fmt: str,
    source: Path,
    out: Path,
    therapy_ids: Sequence[str],
    seed: int = 0,
) -> ImportResult:
    """Convert every record of a source, writing valid profiles and collecting rejections.

    A bad record never stops the import: it is rejected with its reference, field and reason.
    The result (and `import.json` in `out`) gives the counts and the time taken.

    Raises:
        InputError: the source is missing or unreadable as a whole.
    """
    start = time.perf_counter()
    source = Path(source)
    if not source.is_file():
        raise InputError(f"{source}: no such file; give the dataset file to import")
    out.mkdir(parents=True, exist_ok=True)
    result = ImportResult()
    seen: set[str] = set()
    for ref, record in reader(source):
        try:
            draft = converter(record, ref, seed)
            profile = finish(draft, fmt, source, ref, therapy_ids)
            if profile.id in seen:
                raise RecordError("id", f"{profile.id!r} is used by an earlier record")
        except RecordError as exc:
            result.rejected.append(Rejection(ref, exc.field, exc.message))
            log.info("rejected record %s: %s", ref, exc)
            continue
        seen.add(profile.id)
        path = out / f"{profile.id}.yaml"
        dump_profile(profile, path)
        result.written.append(path)
        result.defaulted.update(draft.defaulted)
    result.seconds = time.perf_counter() - start
    report = {
        "format": fmt,
        "source": str(source),
        "imported": len(result.written),
        "defaulted": dict(result.defaulted),
        "rejected": [r.__dict__ for r in result.rejected],
        "seconds": round(result.seconds, 3),
    }
    (out / "import.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return result
