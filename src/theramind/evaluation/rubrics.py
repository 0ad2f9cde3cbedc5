"""Judge rubrics: YAML files in `configs/rubrics/`, validated on load, and their verdict schemas.

A rubric is either a count of strict pass/fail items (the score is how many passed) or a set of
Likert items (the score is their mean or sum). The judge returns one verdict per item with a
one-line reason; the score is always computed here, never taken from the model.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model, field_validator, model_validator

from theramind.config import default_config_dir, validate_file
from theramind.errors import ConfigError
from theramind.strict import Strict
from theramind.text import shorten

log = logging.getLogger(__name__)

Scope = Literal["session", "course"]
ID_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
REASON_CHARS = 300


class Scale(Strict):
    """How item verdicts become a score."""

    kind: Literal["count", "likert"] = Field(
        description="count: pass/fail items, score = items passed; likert: rated items."
    )
    min: int = Field(default=0, ge=0, le=100, description="Lowest Likert rating of an item.")
    max: int = Field(default=3, ge=1, le=100, description="Highest Likert rating of an item.")
    aggregate: Literal["mean", "sum"] = Field(
        default="mean", description="Likert only: combine item ratings by mean or sum."
    )

    @model_validator(mode="after")
    def _bounds(self) -> Scale:
        if self.kind == "likert" and self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self


class RubricItem(Strict):
    """One thing the judge checks, with the strict criterion it must meet."""

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=120)
    criterion: str = Field(min_length=10, max_length=1200)
    anchors: dict[int, str] = Field(
        default_factory=dict, description="Likert only: what a rating means, by rating."
    )


class Rubric(Strict):
    """A metric the judge scores from a transcript of one session or of a whole course."""

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=80)
    scope: Scope
    description: str = ""
    instruction: str = Field(min_length=20, max_length=4000)
    scale: Scale
    items: list[RubricItem] = Field(min_length=1, max_length=20)
    default: bool = Field(default=True, description="Run when no rubric is named explicitly.")

    @field_validator("items")
    @classmethod
    def _unique_items(cls, items: list[RubricItem]) -> list[RubricItem]:
        ids = [i.id for i in items]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"item ids must be unique; repeated: {dupes}")
        return items

    @model_validator(mode="after")
    def _anchors(self) -> Rubric:
        for item in self.items:
            if item.anchors and self.scale.kind == "count":
                raise ValueError(f"item {item.id!r}: anchors apply to likert scales only")
            outside = [k for k in item.anchors if not self.scale.min <= k <= self.scale.max]
            if outside:
                raise ValueError(
                    f"item {item.id!r}: anchors {outside} lie outside "
                    f"{self.scale.min}..{self.scale.max}"
                )
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """The lowest and highest score this rubric can give."""
        n = len(self.items)
        if self.scale.kind == "count":
            return 0.0, float(n)
        lo, hi = float(self.scale.min), float(self.scale.max)
        return (lo * n, hi * n) if self.scale.aggregate == "sum" else (lo, hi)

    @property
    def version(self) -> str:
        """A short hash of the rubric's content: scores of another version are redone."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]

    def passes(self, verdict: BaseModel) -> dict[str, bool]:
        """Which pass/fail items count as passed: the judge said so *and* gave a real reason."""
        out = {}
        for item in self.items:
            part = getattr(verdict, item.id)
            out[item.id] = bool(part.passed) and supported(part.reason, item)
        return out

    def score(self, verdict: BaseModel) -> float:
        """Compute the score from a validated verdict (code decides, not the model)."""
        if self.scale.kind == "count":
            return float(sum(self.passes(verdict).values()))
        ratings = [float(getattr(verdict, item.id).rating) for item in self.items]
        total = sum(ratings)
        return total if self.scale.aggregate == "sum" else total / len(ratings)


MIN_REASON_WORDS = 4
_WORD = re.compile(r"[a-z0-9']+")


def supported(reason: str, item: RubricItem) -> bool:
    """Whether a pass comes with evidence: a few words beyond the item's own name.

    A reason that only repeats the item's id or name ("Continuity") is no evidence, so the pass
    does not count: small judges otherwise pass every item by echoing its label.
    """
    words = _WORD.findall(reason.lower())
    label = set(_WORD.findall(f"{item.id.replace('_', ' ')} {item.name}".lower()))
    return len(words) >= MIN_REASON_WORDS and not set(words) <= label


def _trim(value: str) -> str:
    return shorten(str(value), REASON_CHARS)


class ItemPass(Strict):
    """A pass/fail verdict on one item."""

    reason: str = Field(
        description="One line: quote the words that meet the criterion, or say what is missing."
    )
    passed: bool = Field(description="True only if the criterion is fully met.")

    @field_validator("reason")
    @classmethod
    def _short(cls, value: str) -> str:
        return _trim(value)


_SCHEMAS: dict[tuple[str, str], type[BaseModel]] = {}


def _rating_model(lo: int, hi: int) -> type[BaseModel]:
    def _short(cls: type, value: str) -> str:
        return _trim(value)

    return create_model(
        f"ItemRating{lo}to{hi}",
        __base__=Strict,
        __doc__="A rating of one item.",
        __validators__={"short": field_validator("reason")(_short)},
        reason=(
            str,
            Field(description="One line: the evidence for the rating, quoting the transcript."),
        ),
        rating=(int, Field(ge=lo, le=hi, description=f"An integer from {lo} to {hi}.")),
    )


def verdict_schema(rubric: Rubric) -> type[BaseModel]:
    """Return (building once per rubric version) the model the judge must fill in."""
    key = (rubric.id, rubric.version)
    if key in _SCHEMAS:
        return _SCHEMAS[key]
    if rubric.scale.kind == "count":
        part: type[BaseModel] = ItemPass
    else:
        part = _rating_model(rubric.scale.min, rubric.scale.max)
    fields: dict[str, Any] = {
        item.id: (part, Field(description=f"{item.name}.")) for item in rubric.items
    }
    name = "".join(w.capitalize() for w in rubric.id.split("_")) + "Verdict"
    schema = create_model(
        name,
        __base__=Strict,
        __doc__=f"Your verdict on each item of the {rubric.name} rubric, in order.",
        **fields,
    )
    _SCHEMAS[key] = schema
    return schema


def rubrics_dir(config_dir: Path | None = None) -> Path:
    """Return the directory of the bundled rubrics."""
    return (config_dir or default_config_dir()) / "rubrics"


def load_rubric(path: Path | str) -> Rubric:
    """Load and validate one rubric; errors name the file and the field.

    Raises:
        ConfigError: the file is missing, not YAML, or fails validation.
    """
    return validate_file(Path(path), Rubric)


def load_rubrics(directory: Path | str | None = None) -> dict[str, Rubric]:
    """Load every `*.yaml` rubric of a directory, keyed by id (ids must be unique)."""
    root = Path(directory) if directory else rubrics_dir()
    if not root.is_dir():
        raise ConfigError(f"{root}: no such rubric directory")
    out: dict[str, Rubric] = {}
    for path in sorted(root.glob("*.yaml")):
        rubric = load_rubric(path)
        if rubric.id in out:
            raise ConfigError(f"{path}: id: {rubric.id!r} is used by another rubric")
        out[rubric.id] = rubric
    if not out:
        raise ConfigError(f"{root}: no *.yaml rubrics found")
    return out


def select_rubrics(rubrics: dict[str, Rubric], ids: Sequence[str] | None) -> list[Rubric]:
    """Pick rubrics by id (None or empty: those marked `default`), in the order given.

    Raises:
        ConfigError: an id names no rubric.
    """
    if not ids:
        return [r for r in rubrics.values() if r.default]
    unknown = [i for i in ids if i not in rubrics]
    if unknown:
        raise ConfigError(f"unknown rubric ids {unknown}; available: {sorted(rubrics)}")
    return [rubrics[i] for i in dict.fromkeys(ids)]
