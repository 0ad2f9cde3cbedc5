"""The deterministic risk screen: curated patterns over normalised text, no model calls."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from theramind.errors import InputError
from theramind.records import (
    RISK_ORDER,
    LayerVerdict,
    Perception,
    RiskLevel,
    RiskScreen,
    max_risk,
)
from theramind.safety.normalize import deobfuscate, fold, rewrite_slang
from theramind.safety.patterns import PatternSet, available_languages, load_patterns

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
    """Fold obfuscations, lower-case, straighten quotes, expand contractions, collapse spaces."""
    text = deobfuscate(fold(text).translate(_CHARS))
    text = _WORD_HYPHEN.sub(" ", text)
    text = _NEGATED_AUX.sub(r"\1 not", text)
    text = _CONTRACTION_RE.sub(lambda m: _CONTRACTIONS[m.group(0)], text)
    text = _MY_SELF.sub("myself", text)
    return rewrite_slang(_SPACES.sub(" ", text).strip())


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
        if not esc.context_ok and not found.intersection(c for g in esc.all_of for c in g):
            continue  # context alone never raises the level, unless the rule says it may
        hits.level = max_risk(hits.level, esc.level)
        named = {c for group in esc.all_of for c in group}
        for category in found & named:  # the risk the rule is about carries its level
            hits.levels[category] = max_risk(hits.levels[category], esc.level)
        for category, phrase in context:
            if category in named:
                spec = ps.spec.categories[category]
                # context-only categories ("timing") come after the risk they qualify
                hits.add(category, esc.level, phrase, -1 if spec.level == "none" else spec.order)


def _pattern_verdict(sets: Sequence[PatternSet], norm: str) -> LayerVerdict:
    hits = _Hits()
    for ps in sets:
        _scan(ps, norm, hits)
    if not hits.levels:
        return LayerVerdict(layer="patterns")
    cats = sorted(hits.levels, key=lambda c: (RISK_ORDER[hits.levels[c]], hits.order[c]))[::-1]
    level = max_risk(hits.level, *hits.levels.values())
    evidence: list[str] = []
    for cat in cats:
        evidence.extend(p for p in hits.phrases[cat] if p not in evidence)
    return LayerVerdict(
        layer="patterns", level=level, categories=cats, evidence=evidence[:MAX_EVIDENCE]
    )


def detect_language(norm: str, sets: Sequence[PatternSet]) -> str:
    """Return the language whose marker words a normalised message uses most ("und" if none)."""
    best, best_count = "und", 0
    for ps in sets:
        if ps.markers is None:
            continue
        count = len(ps.markers.findall(norm))
        if count > best_count:
            best, best_count = ps.language, count
    return best


def combine(layers: Sequence[LayerVerdict], language: str = "") -> RiskScreen:
    """Merge layer verdicts: the highest level wins; categories and evidence are pooled."""
    ran = [v for v in layers if v.available]
    level = max_risk(*(v.level for v in ran))
    categories: list[str] = []
    evidence: list[str] = []
    for verdict in sorted(ran, key=lambda v: -RISK_ORDER[v.level]):
        if verdict.level == "none":
            continue
        categories.extend(c for c in verdict.categories if c not in categories)
        evidence.extend(e for e in verdict.evidence if e not in evidence)
    return RiskScreen(
        level=level,
        categories=categories,
        evidence=evidence[:MAX_EVIDENCE],
        language=language,
        layers=list(layers),
    )


def with_diagnostician(
    result: RiskScreen, perception: Perception, *, fallback: bool = False
) -> RiskScreen:
    """Return the screen result with the diagnostician's judgement added as a layer.

    The screen's own level stays what its layers found; the turn's level is the higher of the
    two, decided by the session graph.
    """
    verdict = LayerVerdict(
        layer="diagnostician",
        level=perception.risk_level,
        evidence=[perception.risk_evidence[:MAX_PHRASE_CHARS]] if perception.risk_evidence else [],
        available=not fallback,
        note="fallback perception (the model's output was unusable)" if fallback else "",
    )
    kept = [v for v in result.layers if v.layer != "diagnostician"]
    return result.model_copy(update={"layers": [*kept, verdict]})


def screen(
    text: str,
    *,
    languages: Sequence[str] | None = None,
    config_dir: Path | None = None,
    semantic: bool = True,
) -> RiskScreen:
    """Screen one patient message for risk of harm; return the level, categories and evidence.

    Args:
        text: The patient's message.
        languages: Pattern files to run; every language with a pattern file when None.
        config_dir: The config folder; the packaged configs when None.
        semantic: Whether to run the semantic layer too (loaded once per process; when it
            cannot load, the patterns decide alone and the verdict says the layer was missing).

    Returns:
        The highest level of the layers, with each layer's verdict in `layers`.
    """
    return screen_many([text], languages=languages, config_dir=config_dir, semantic=semantic)[0]


def screen_many(
    texts: Sequence[str],
    *,
    languages: Sequence[str] | None = None,
    config_dir: Path | None = None,
    semantic: bool = True,
) -> list[RiskScreen]:
    """Screen several messages at once (the semantic layer embeds them together); see screen()."""
    for text in texts:
        if not isinstance(text, str):
            raise InputError(f"screen() needs a str, got {type(text).__name__}")
    if isinstance(languages, str):
        languages = (languages,)
    names = languages if languages is not None else available_languages(config_dir)
    sets = [load_patterns(language, config_dir) for language in names]
    norms = [normalize_text(text) for text in texts]
    live = [n for n in norms if n]
    semantic_layers: list[LayerVerdict] = []
    if semantic and live:
        from theramind.safety.semantic import semantic_verdicts

        semantic_layers = semantic_verdicts(live, config_dir)
    pending = iter(semantic_layers)
    results: list[RiskScreen] = []
    for norm in norms:
        if not norm:
            results.append(RiskScreen())
            continue
        layers = [_pattern_verdict(sets, norm)]
        if semantic_layers:
            layers.append(next(pending))
        results.append(combine(layers, detect_language(norm, sets)))
    return results
