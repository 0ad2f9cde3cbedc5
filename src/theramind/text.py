"""Small text helpers shared across the package."""

from __future__ import annotations

import re

CHARS_PER_TOKEN = 4
"""The project's one token estimate: about four characters a token (when no tokenizer counts)."""


def estimate_tokens(text: str) -> int:
    """Estimate the tokens of `text` as ceil(chars / `CHARS_PER_TOKEN`)."""
    return -(-len(text) // CHARS_PER_TOKEN)


def token_chars(tokens: int) -> int:
    """The characters `tokens` tokens hold under the same estimate."""
    return tokens * CHARS_PER_TOKEN


def shorten(text: str, chars: int) -> str:
    """Collapse whitespace and cut to at most `chars` characters, ending in '…' when cut."""
    text = " ".join(text.split())
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
CJK_CHARS_PER_WORD = 2
"""Chinese and Japanese are written without spaces: two characters count as one word."""


def has_cjk(text: str) -> bool:
    """Return whether `text` holds Chinese, Japanese or Korean characters."""
    return _CJK.search(text) is not None


def word_units(text: str) -> float:
    """Count words: space-separated tokens, each CJK character half a word."""
    total = 0.0
    for token in text.split():
        cjk = len(_CJK.findall(token))
        total += cjk / CJK_CHARS_PER_WORD + len(_CJK.sub(" ", token).split())
    return total


def cut_units(text: str, max_words: int) -> tuple[str, bool]:
    """Cut `text` after `max_words` word units; return the text and whether it was cut."""
    used = 0.0
    in_word = False
    for i, ch in enumerate(text):
        if _CJK.match(ch):
            cost, in_word = 1 / CJK_CHARS_PER_WORD, False
        elif ch.isspace():
            cost, in_word = 0.0, False
        else:
            cost, in_word = (0.0 if in_word else 1.0), True
        if used + cost > max_words + 1e-9:
            return text[:i].rstrip(), True
        used += cost
    return text, False
