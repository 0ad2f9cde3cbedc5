"""Plausible, schema-valid instances of a JSON schema: for the scripted model and stub servers."""

from __future__ import annotations

import hashlib
import random
from typing import Any

from theramind.llm.jsonschema import resolve

_TEXT = (
    "I have been feeling tense at work and I keep thinking about what my sister said "
    "last week about moving back home and it makes me tired but also a little hopeful "
    "about trying again"
)
_WORDS = _TEXT.split()


def request_rng(seed: int, *parts: str) -> random.Random:
    """Return a generator seeded by `seed` and the request text, independent of call order."""
    digest = hashlib.sha256(("\x1f".join([str(seed), *parts])).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _sentence(rng: random.Random, max_len: int | None) -> str:
    start = rng.randrange(0, len(_WORDS) - 6)
    text = " ".join(_WORDS[start : start + rng.randint(4, 9)]).capitalize() + "."
    return text[:max_len] if max_len else text


def schema_instance(
    schema: dict[str, Any], rng: random.Random, root: dict[str, Any] | None = None
) -> Any:
    """Build a value that validates against `schema` (the subset pydantic emits)."""
    root = root or schema
    schema = resolve(schema, root, first=True)
    if "enum" in schema:
        return rng.choice(schema["enum"])
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        return {name: schema_instance(sub, rng, root) for name, sub in props.items()}
    if kind == "array":
        lo = int(schema.get("minItems", 0))
        hi = int(schema.get("maxItems", max(lo, 2)))
        count = rng.randint(max(lo, min(1, hi)), max(lo, min(hi, 2)))
        items = schema.get("items", {"type": "string"})
        out: list[Any] = []
        for _ in range(count * 3):
            value = schema_instance(items, rng, root)
            if value not in out:
                out.append(value)
            if len(out) == count:
                break
        return out
    if kind in ("number", "integer"):
        lo = schema.get("minimum", 0)
        hi = schema.get("maximum", lo + 10)
        value = rng.uniform(lo, hi)
        return round(value) if kind == "integer" else round(value, 2)
    if kind == "boolean":
        return rng.random() < 0.2
    if kind == "string":
        return _sentence(rng, schema.get("maxLength"))
    return None
