"""The deterministic risk screen: curated patterns over normalised text, no model calls."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from theramind.errors import InputError
from theramind.records import RISK_ORDER, RiskLevel, RiskScreen, max_risk
from theramind.safety.patterns import PatternSet, load_patterns

MAX_EVIDENCE = 6
MAX_PHRASE_CHARS = 80

_CHARS = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u200b": "",
    }
)
_CONTRACTIONS = {
    "can't": "can not",
    "cant": "can not",
    "cannot": "can not",
    "won't": "will not",
    "wont": "will not",
    "shan't": "shall not",
    "ain't": "is not",
    "i'm": "i am",
    "im": "i am",
    "i've": "i have",
    "ive": "i have",
    "i'll": "i will",
    "i'd": "i would",
    "you're": "you are",
    "you've": "you have",
    "you'd": "you would",
    "you'll": "you will",
    "it's": "it is",
    "that's": "that is",
    "there's": "there is",
    "what's": "what is",
    "they're": "they are",
    "they'd": "they would",
    "they'll": "they will",
    "we're": "we are",
    "we'd": "we would",
    "gonna": "going to",
    "wanna": "want to",
    "gotta": "got to",
    "tryna": "trying to",
    "kinda": "kind of",
    "sorta": "sort of",
    "cuz": "because",
    "'cause": "because",
    "u": "you",
}
_CONTRACTION_RE = re.compile(
    r"(?<![\w'])(?:"
    + "|".join(re.escape(k) for k in sorted(_CONTRACTIONS, key=len, reverse=True))
    + r")(?![\w'])"
)
_NEGATED_AUX = re.compile(
    r"\b(do|does|did|is|are|was|were|have|has|had|would|could|should|must|need|might)n'?t\b"
)
_WORD_HYPHEN = re.compile(r"(?<=\w)[-_/](?=\w)")
_SPACES = re.compile(r"\s+")
_MY_SELF = re.compile(
    r"\bmy self\b(?! (?:esteem|confidence|worth|image|care|respect|doubt|talk|control|awareness))"
)


def normalize_text(text: str) -> str:
    """Lower-case, straighten quotes, expand contractions and collapse whitespace."""
    text = unicodedata.normalize("NFKC", text).translate(_CHARS).lower()
    text = _WORD_HYPHEN.sub(" ", text)
    text = _NEGATED_AUX.sub(r"\1 not", text)
    text = _CONTRACTION_RE.sub(lambda m: _CONTRACTIONS[m.group(0)], text)
    text = _MY_SELF.sub("myself", text)
    return _SPACES.sub(" ", text).strip()


@dataclass
class _Hits:
    levels: dict[str, RiskLevel] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)
    phrases: dict[str, list[str]] = field(default_factory=dict)
    level: RiskLevel = "none"

    def add(self, category: str, level: RiskLevel, phrase: str, order: int) -> None:
        self.levels[category] = max_risk(self.levels.get(category, "none"), level)
        self.order.setdefault(category, order)
        found = self.phrases.setdefault(category, [])
        if phrase not in found:
            found.append(phrase)


def _negated(ps: PatternSet, text: str, start: int) -> bool:
    prefix = text[max(0, start - 120) : start]
    breaks = list(ps.clause_break.finditer(prefix))
    clause = prefix[breaks[-1].end() :] if breaks else prefix
    return ps.negation.search(clause.strip()) is not None if clause.strip() else False


def _scan(ps: PatternSet, text: str, hits: _Hits) -> None:
    if ps.mask is not None:
        text = ps.mask.sub(" ~ ", text)
    found: set[str] = set()
    context: list[tuple[str, str]] = []  # level-"none" matches: they only feed escalations
    for rule in ps.rules:
        for m in rule.regex.finditer(text):
            if rule.negatable and _negated(ps, text, m.start()):
                continue
            phrase = m.group(0).strip()[:MAX_PHRASE_CHARS]
            if rule.level == "none":
                context.append((rule.category, phrase))
                continue
            hits.add(rule.category, rule.level, phrase, ps.spec.categories[rule.category].order)
            found.add(rule.category)
    for esc in ps.spec.escalations:
        present = found | {c for c, _ in context}
        if not all(present.intersection(group) for group in esc.all_of):
            continue
        if not found.intersection(c for group in esc.all_of for c in group):
            continue  # context alone never raises the level
        hits.level = max_risk(hits.level, esc.level)
        named = {c for group in esc.all_of for c in group}
        for category, phrase in context:
            if category in named:
                hits.add(category, esc.level, phrase, ps.spec.categories[category].order)


def screen(
    text: str, *, languages: Sequence[str] = ("en",), config_dir: Path | None = None
) -> RiskScreen:
    """Screen one patient message for risk of harm; return the level, categories and evidence."""
    if not isinstance(text, str):
        raise InputError(f"screen() needs a str, got {type(text).__name__}")
    if isinstance(languages, str):
        languages = (languages,)
    norm = normalize_text(text)
    if not norm:
        return RiskScreen()
    hits = _Hits()
    for language in languages:
        _scan(load_patterns(language, config_dir), norm, hits)
    if not hits.levels:
        return RiskScreen()
    cats = sorted(hits.levels, key=lambda c: (RISK_ORDER[hits.levels[c]], hits.order[c]))[::-1]
    level = max_risk(hits.level, *hits.levels.values())
    evidence: list[str] = []
    for cat in cats:
        evidence.extend(p for p in hits.phrases[cat] if p not in evidence)
    return RiskScreen(level=level, categories=cats, evidence=evidence[:MAX_EVIDENCE])
