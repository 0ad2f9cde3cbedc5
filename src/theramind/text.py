"""Small text helpers shared across the package."""

from __future__ import annotations


def shorten(text: str, chars: int) -> str:
    """Collapse whitespace and cut to at most `chars` characters, ending in '…' when cut."""
    text = " ".join(text.split())
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"
