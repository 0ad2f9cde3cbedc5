"""Recall ranking (similarity, recency, kind), the token budget, and the prompt block."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import get_args

from theramind.memory.index import Hit
from theramind.records import MemoryItem, SalientItem, utcnow
from theramind.text import estimate_tokens, token_chars

KIND_WEIGHTS: dict[str, float] = {
    "risk": 0.05,
    "summary": 0.03,
    "decision": 0.03,
    "formulation": 0.02,
    "intake": 0.01,
    "disclosure": 0.0,
}
"""Small score bonuses: open risks, summaries and decisions win close calls against disclosures."""

SALIENT_LABELS: tuple[str, ...] = get_args(SalientItem.model_fields["kind"].annotation)
_MIN_TRUNCATED_CHARS = 40


def recency_bonus(session_no: int, current_session: int, weight: float) -> float:
    """Return `weight` scaled by how late in the treatment so far the session was (0 to weight)."""
    if current_session <= 0:
        return weight
    return weight * min(1.0, max(0.0, session_no / current_session))


def item_from_hit(
    hit: Hit, *, similarity: float | None = None, score: float | None = None
) -> MemoryItem:
    """Build a MemoryItem from a stored document."""
    meta = hit.metadata
    turn = meta.get("turn")
    created = meta.get("created_at")
    sim = hit.similarity if similarity is None else similarity
    return MemoryItem(
        id=str(meta.get("key") or hit.id),
        patient_id=str(meta["patient_id"]),
        kind=meta["kind"],
        text=hit.text,
        session_no=int(meta.get("session_no", 0)),
        turn=int(turn) if turn is not None else None,
        created_at=datetime.fromisoformat(created) if isinstance(created, str) else utcnow(),
        similarity=round(sim, 6),
        score=round(sim if score is None else score, 6),
    )


def quoted_turns(session_no: int, done: int, window: int) -> set[tuple[int, int]]:
    """Return the (session, turn) pairs a prompt quotes: the last `window` of `done` turns."""
    return {(session_no, t) for t in range(max(1, done - window + 1), done + 1)}


def rank(
    hits: Iterable[Hit],
    *,
    current_session: int,
    min_similarity: float,
    recency_weight: float,
    k: int,
    skip: Collection[tuple[int, int]] = (),
) -> list[MemoryItem]:
    """Score hits by similarity + recency + kind, drop the irrelevant, keep the best `k`.

    `skip` lists (session, turn) pairs the prompt already holds verbatim (the recent turns),
    so recall spends its budget on what the prompt does not already say.
    """
    scored: list[MemoryItem] = []
    for hit in hits:
        if hit.similarity < min_similarity:
            continue
        session_no = int(hit.metadata.get("session_no", 0))
        turn = hit.metadata.get("turn")
        if turn is not None and (session_no, int(turn)) in skip:
            continue
        kind = str(hit.metadata.get("kind", "disclosure"))
        score = (
            hit.similarity
            + recency_bonus(session_no, current_session, recency_weight)
            + KIND_WEIGHTS.get(kind, 0.0)
        )
        scored.append(item_from_hit(hit, score=score))
    scored.sort(key=lambda m: (-m.score, -m.session_no, m.id))
    return scored[:k]


def split_label(item: MemoryItem) -> tuple[str, str]:
    """Return (label, body): a disclosure 'goal: text' is labelled 'goal', others by kind."""
    if item.kind == "disclosure":
        head, sep, rest = item.text.partition(": ")
        if sep and head in SALIENT_LABELS:
            return head, rest
    return item.kind, item.text


def embedding_text(kind: str, text: str) -> str:
    """Return the text to embed: a disclosure's label prefix ('goal: ') only blurs its meaning."""
    if kind == "disclosure":
        head, sep, rest = text.partition(": ")
        if sep and head in SALIENT_LABELS and rest.strip():
            return rest
    return text


def line_prefix(item: MemoryItem, label: str) -> str:
    """Return a memory line's tag: '[s1 goal] ', or '[intake] ' for what came before session 1."""
    if item.kind == "intake":
        return "- [intake] "
    return f"- [s{item.session_no} {label}] "


def format_memory(item: MemoryItem) -> str:
    """Render one memory as a prompt line, e.g. '- [s1 goal] sleep before midnight'."""
    label, body = split_label(item)
    return line_prefix(item, label) + " ".join(body.split())


def format_memories(items: Sequence[MemoryItem]) -> str:
    """Render recalled memories as the bounded block that goes inside <memories> tags."""
    return "\n".join(format_memory(item) for item in items)


def line_tokens(item: MemoryItem) -> int:
    """Return the tokens one memory costs in the block, its newline included."""
    return estimate_tokens(format_memory(item) + "\n")


def _truncated(item: MemoryItem, budget: int) -> MemoryItem | None:
    """Shorten an item's text so its line fits in `budget` tokens, or None if too little is left."""
    label, body = split_label(item)
    prefix = line_prefix(item, label)
    room = token_chars(budget) - len(prefix) - 2  # the newline and the ellipsis
    if room < _MIN_TRUNCATED_CHARS:
        return None
    body = " ".join(body.split())[:room].rstrip() + "…"
    text = f"{label}: {body}" if label != item.kind else body
    return item.model_copy(update={"text": text})


def fit_budget(
    items: Sequence[MemoryItem], budget: int, item_tokens: int | None = None
) -> list[MemoryItem]:
    """Keep items in rank order while the block stays within `budget` tokens.

    With `item_tokens`, a longer memory is shortened to that size first, so one long summary
    cannot crowd out the rest of the block.
    """
    kept: list[MemoryItem] = []
    used = 0
    for item in items:
        if item_tokens is not None and line_tokens(item) > item_tokens:
            item = _truncated(item, item_tokens) or item
        cost = line_tokens(item)
        if used + cost <= budget:
            kept.append(item)
            used += cost
        elif not kept:
            short = _truncated(item, budget)
            if short is not None:
                kept.append(short)
                used += line_tokens(short)
    return kept
