"""A cheap language guess from script and common words, for patients whose profile names none.

Scripts decide first (Han → zh, kana → ja, Hangul → ko, Cyrillic → ru, Arabic → ar, Thai → th,
Devanagari → hi). Latin text is told apart by its most frequent function words (en, es, id, fr,
de, pt). Too little evidence returns None, and the caller keeps its default.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Literal

from theramind.records import PatientProfile


def _vocab(words: str) -> frozenset[str]:
    return frozenset(words.split())


_SCRIPTS: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("ja", ((0x3040, 0x30FF),)),
    ("ko", ((0xAC00, 0xD7AF), (0x1100, 0x11FF))),
    ("zh", ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF))),
    ("ru", ((0x0400, 0x04FF),)),
    ("ar", ((0x0600, 0x06FF),)),
    ("th", ((0x0E00, 0x0E7F),)),
    ("hi", ((0x0900, 0x097F),)),
)
_WORDS: dict[str, frozenset[str]] = {
    "en": _vocab(
        "the and i you my is it to of that in was me have not but what with this just feel "
        "am do so be are don't can't i'm"
    ),
    "es": _vocab(
        "el la los las y que de no me mi es en un una por con para pero muy lo yo estoy "
        "siento tengo qué más"
    ),
    "id": _vocab(
        "aku saya yang dan tidak ini itu di ke dari dengan untuk ada sudah bisa tapi juga "
        "kamu mau lagi banget gak nggak"
    ),
    "fr": _vocab(
        "le la les et je ne pas de un une que est pour avec mais mon ma suis tout très c'est j'ai"
    ),
    "de": _vocab(
        "der die das und ich nicht ist zu mit ein eine mein mich aber auch sehr bin habe wie"
    ),
    "pt": _vocab(
        "o a os as e que de não me meu minha é em um uma com para mas muito eu estou tenho"
    ),
}
_DENSE = frozenset({"zh", "ja", "ko"})
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
MIN_LETTERS = 4
MIN_HITS = 2


def _script_of(ch: str) -> str | None:
    code = ord(ch)
    for language, ranges in _SCRIPTS:
        if any(lo <= code <= hi for lo, hi in ranges):
            return language
    return None


def detect_language(text: str) -> str | None:
    """Return the BCP-47 primary code `text` is most likely written in, or None if unsure."""
    text = unicodedata.normalize("NFKC", text or "")
    letters = [ch for ch in text if ch.isalpha()]
    if len(letters) < MIN_LETTERS:
        return None
    scripts = Counter(s for s in map(_script_of, letters) if s)
    if scripts:
        language, count = scripts.most_common(1)[0]
        if "ja" in scripts and language == "zh":
            language = "ja"  # Japanese mixes kanji with kana; Chinese has no kana
        # A Han, kana or Hangul character carries about what a short Latin word does.
        weight = 3 if language in _DENSE else 1
        if count * weight * 3 >= len(letters) + count * (weight - 1):
            return language
    words = [w.lower() for w in _WORD.findall(text)]
    hits = {lang: sum(w in vocab for w in words) for lang, vocab in _WORDS.items()}
    best = max(hits, key=lambda lang: hits[lang])
    ranked = sorted(hits.values(), reverse=True)
    if hits[best] < MIN_HITS or ranked[0] == ranked[1]:
        return None
    return best


LanguageSource = Literal["profile", "intake", "default"]


def intake_language(profile: PatientProfile) -> tuple[str | None, LanguageSource]:
    """Return a patient's language and where it came from: 'profile', 'intake' or 'default'.

    'default' (None) means neither the profile nor its intake text tells; the first message
    then decides (see the session graph's `screen`).
    """
    if profile.language:
        return profile.language, "profile"
    found = detect_language(f"{profile.presenting_problem}\n{profile.history}")
    return (found, "intake") if found else (None, "default")
