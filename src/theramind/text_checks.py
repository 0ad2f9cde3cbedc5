"""What makes a string unfit to store or send to a model (shared by records and validation)."""

from __future__ import annotations


def text_problem(text: str) -> str | None:
    """Return what is wrong with `text` (a NUL, a lone surrogate), or None when it is fine."""
    if "\x00" in text:
        return "contains a NUL character; remove it"
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return "contains a lone surrogate (not valid Unicode); re-encode it"
    return None
