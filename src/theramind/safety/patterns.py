"""Risk pattern files: one YAML per language, validated on load and compiled once."""

from __future__ import annotations

import functools
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from theramind.config_files import config_base, config_file, validate_file
from theramind.errors import ConfigError
from theramind.records import RISK_ORDER, RiskLevel
from theramind.strict import Strict

logger = logging.getLogger(__name__)

_MACRO = re.compile(r"<([a-z_][a-z0-9_]*)>")
_MAX_MACRO_DEPTH = 8


def _check_regex(value: str) -> str:
    leftover = _MACRO.search(value)
    if leftover:
        raise ValueError(f"unknown macro <{leftover.group(1)}>")
    if "(?P<" in value:
        raise ValueError("named groups are not allowed")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from exc
    return value


Regex = Annotated[str, AfterValidator(_check_regex)]


class PatternSpec(Strict):
    """One pattern; a bare string in YAML is a pattern with the category's settings."""

    regex: Regex
    level: RiskLevel | None = None
    negatable: bool = True

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"regex": data} if isinstance(data, str) else data


class CategorySpec(Strict):
    """A risk category: its level, its place in the C-SSRS order, and its patterns."""

    level: RiskLevel
    order: int = Field(ge=0)
    description: str = ""
    negatable: bool = True
    patterns: list[PatternSpec] = Field(min_length=1)


class EscalationSpec(Strict):
    """A combination of categories that raises the level (every group must have a match)."""

    name: str
    all_of: list[list[str]] = Field(min_length=2)
    level: RiskLevel
    context_ok: bool = False
    """Whether context-only matches (level `none`) may raise the level without a risk match."""


class PatternFile(Strict):
    """The contents of `configs/safety/patterns/<language>.yaml`."""

    language: str = Field(pattern=r"^[a-z]{2,3}(-[a-z0-9]+)?$")
    markers: list[str] = Field(default_factory=list)
    """Common words (or characters) of the language, for telling which language a message is in."""
    spaced: bool = True
    """Whether words are separated by spaces (markers then match whole words only)."""
    negation_window: int = Field(default=3, ge=0, le=8)
    negation_cues: Regex
    negation_exceptions: Regex = "(?!x)x"
    clause_breaks: Regex = r"[.!?;:,]"
    macros: dict[str, str] = Field(default_factory=dict)
    benign: list[Regex] = Field(default_factory=list)
    denials: list[Regex] = Field(default_factory=list)
    categories: dict[str, CategorySpec] = Field(min_length=1)
    escalations: list[EscalationSpec] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _expand_macros(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("macros", {}), dict):
            return data
        macros = _resolve_macros(data.get("macros") or {})
        data = dict(data)
        for key in ("benign", "denials"):
            if isinstance(data.get(key), list):
                data[key] = [_expand(p, macros) for p in data[key]]
        cats = data.get("categories")
        if isinstance(cats, dict):
            data["categories"] = {name: _expand_category(c, macros) for name, c in cats.items()}
        return data

    @model_validator(mode="after")
    def _known_categories(self) -> PatternFile:
        for i, rule in enumerate(self.escalations):
            for group in rule.all_of:
                unknown = [c for c in group if c not in self.categories]
                if unknown:
                    raise ValueError(f"escalations.{i}.all_of: unknown category {unknown[0]!r}")
        return self


def _expand(value: Any, macros: dict[str, str]) -> Any:
    if not isinstance(value, str):
        return value
    return _MACRO.sub(lambda m: macros.get(m.group(1), m.group(0)), value)


def _expand_category(cat: Any, macros: dict[str, str]) -> Any:
    if not isinstance(cat, dict) or not isinstance(cat.get("patterns"), list):
        return cat
    patterns = []
    for p in cat["patterns"]:
        if isinstance(p, dict) and "regex" in p:
            p = {**p, "regex": _expand(p["regex"], macros)}
        patterns.append(_expand(p, macros))
    return {**cat, "patterns": patterns}


def _resolve_macros(raw: dict[str, Any]) -> dict[str, str]:
    """Expand macros that use other macros; unknown names stay for the regex check to report."""
    macros = {str(k): f"(?:{v})" for k, v in raw.items() if isinstance(v, str)}
    for _ in range(_MAX_MACRO_DEPTH):
        expanded = {k: _expand(v, macros) for k, v in macros.items()}
        if expanded == macros:
            return macros
        macros = expanded
    raise ValueError("macros: too deeply nested or recursive")


@dataclass(frozen=True)
class Rule:
    """A compiled group of patterns sharing a category, level and negation setting."""

    category: str
    level: RiskLevel
    negatable: bool
    regex: re.Pattern[str]


@dataclass(frozen=True)
class PatternSet:
    """A language's patterns, compiled for scanning."""

    language: str
    source: Path
    spec: PatternFile
    mask: re.Pattern[str] | None
    rules: tuple[Rule, ...]
    negation: re.Pattern[str]
    clause_break: re.Pattern[str]
    markers: re.Pattern[str] | None


def _alternation(patterns: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def compile_patterns(spec: PatternFile, source: Path) -> PatternSet:
    """Compile a validated pattern file into grouped regular expressions."""
    groups: dict[tuple[str, RiskLevel, bool], list[str]] = {}
    for name, cat in spec.categories.items():
        for p in cat.patterns:
            key = (name, p.level or cat.level, p.negatable and cat.negatable)
            groups.setdefault(key, []).append(p.regex)
    rules = tuple(
        Rule(category=c, level=lvl, negatable=neg, regex=_alternation(ps))
        for (c, lvl, neg), ps in sorted(groups.items(), key=lambda kv: -RISK_ORDER[kv[0][1]])
    )
    masks = spec.benign + spec.denials
    window = spec.negation_window
    negation = re.compile(
        rf"(?:{spec.negation_cues})(?! (?:{spec.negation_exceptions}))(?: [^ ]+){{0,{window}}} ?$"
    )
    return PatternSet(
        language=spec.language,
        source=source,
        spec=spec,
        mask=_alternation(masks) if masks else None,
        rules=rules,
        negation=negation,
        clause_break=re.compile(spec.clause_breaks),
        markers=_markers(spec),
    )


def _markers(spec: PatternFile) -> re.Pattern[str] | None:
    if not spec.markers:
        return None
    words = "|".join(re.escape(m) for m in sorted(spec.markers, key=len, reverse=True))
    return re.compile(rf"\b(?:{words})\b" if spec.spaced else f"(?:{words})")


@functools.lru_cache(maxsize=16)
def available_languages(config_dir: Path | None = None) -> tuple[str, ...]:
    """Return the languages that have a pattern file, English first (looked up once per folder)."""
    folder = patterns_path("en", config_dir).parent
    found = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    return tuple(sorted(found, key=lambda lang: lang != "en"))


def patterns_path(language: str, config_dir: Path | None = None) -> Path:
    """Return the pattern file of a language code."""
    return _pattern_file(config_base(config_dir), language)


@functools.lru_cache(maxsize=256)
def _pattern_file(base: Path, language: str) -> Path:
    # Cached: the screen asks for each language's file on every turn.
    return base / "safety" / "patterns" / f"{language}.yaml"


_LOAD_LOCK = threading.Lock()
"""Sessions screening in parallel on first use compile a pattern file once, not once each."""


@functools.lru_cache(maxsize=32)
def _load(path: Path, language: str) -> PatternSet:
    spec = validate_file(path, PatternFile)
    if spec.language != language:
        raise ConfigError(f"{path}: language: {spec.language!r} does not match the file name")
    logger.debug("loaded %d risk categories from %s", len(spec.categories), path)
    return compile_patterns(spec, path)


def has_patterns(language: str, config_dir: Path | None = None) -> bool:
    """Whether a language has a pattern file (a file once found is not looked up again)."""
    return config_file(patterns_path(language, config_dir)) is not None


def load_patterns(language: str, config_dir: Path | None = None) -> PatternSet:
    """Load, validate and compile (once) the risk patterns of a language."""
    path = patterns_path(language, config_dir)
    found = config_file(path)
    if found is None:
        raise ConfigError(f"{path}: no risk patterns for language {language!r}")
    with _LOAD_LOCK:
        return _load(found, language)
