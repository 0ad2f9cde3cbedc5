"""Turn raw model text into data: strip reasoning, find the JSON, repair it toward the schema."""

from __future__ import annotations

import json
import re
from typing import Any

from theramind.llm.jsonschema import resolve

_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_ROLE_PREFIX = re.compile(
    r"^\s*(?:\*\*)?(?:counselor|counsellor|therapist|assistant)(?:\*\*)?\s*:\s*", re.IGNORECASE
)


def split_reasoning(text: str) -> tuple[str, str]:
    """Split inline `<think>…</think>` reasoning from the visible text."""
    reasoning = "\n".join(m.strip() for m in _THINK.findall(text))
    visible = _THINK.sub("", text)
    visible = re.sub(r"^.*?</think>", "", visible, flags=re.DOTALL | re.IGNORECASE)
    return visible.strip(), reasoning.strip()


def strip_role_prefix(text: str) -> str:
    """Drop a leading speaker label such as 'Counselor:'."""
    return _ROLE_PREFIX.sub("", text, count=1).strip()


def close_truncated_json(text: str) -> str:
    """Close a JSON object cut off mid-way (a model that hit its token limit).

    Drops a dangling key or separator, closes an open string, then closes open arrays and
    objects in order. Returns the text unchanged when nothing is open.
    """
    start = text.find("{")
    if start < 0:
        return text
    body = text[start:]
    stack: list[str] = []
    in_string = escaped = False
    for ch in body:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    if not stack and not in_string:
        return body
    if in_string:
        body += '"'
    body = re.sub(r',\s*$|,?\s*"[^"]*"\s*:\s*$', "", body.rstrip())
    return body + "".join(reversed(stack))


MAX_FENCES = 8
"""Fenced blocks tried per output; a model that writes more is not answering."""


def _object_starts(text: str, limit: int = 20) -> list[int]:
    """Return where the first `limit` `{` characters are (without scanning the whole text)."""
    starts: list[int] = []
    at = text.find("{")
    while at >= 0 and len(starts) < limit:
        starts.append(at)
        at = text.find("{", at + 1)
    return starts


def extract_json(text: str) -> Any:
    """Return the first JSON object in `text`: fenced, bare, embedded in prose, or truncated.

    Raises:
        ValueError: when no JSON object can be decoded.
    """
    if not isinstance(text, str):
        raise ValueError(f"model output is a {type(text).__name__}, not text")
    visible, _ = split_reasoning(text)
    candidates = [m.strip() for m in _FENCE.findall(visible)[:MAX_FENCES]] + [visible.strip()]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        for start in _object_starts(candidate):
            try:
                obj, _ = decoder.raw_decode(candidate, start)
            except (json.JSONDecodeError, RecursionError):
                continue
            if isinstance(obj, dict):
                return obj
    try:
        obj = json.loads(close_truncated_json(visible))
    except (json.JSONDecodeError, RecursionError):
        obj = None
    if isinstance(obj, dict):
        return obj
    raise ValueError("no JSON object found in the model output")


def _norm_label(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", value.lower())


def repair(data: Any, schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """Nudge decoded data toward a JSON schema before validation.

    Maps enum labels case- and punctuation-insensitively, clamps numbers into their bounds,
    coerces numeric and boolean strings, truncates over-long strings and lists, and drops
    unknown keys. It never invents required fields: validation still decides.
    """
    root = root or schema
    schema = resolve(schema, root)
    kind = schema.get("type")
    options = schema.get("enum") or ([schema["const"]] if "const" in schema else None)
    if options is not None and isinstance(data, str):
        wanted = _norm_label(data)
        for option in options:
            if isinstance(option, str) and _norm_label(option) == wanted:
                return option
        return data
    if kind == "object" and isinstance(data, dict):
        props: dict[str, Any] = schema.get("properties", {})
        out: dict[str, Any] = {}
        lowered = {_norm_label(k): k for k in props}
        for key, value in data.items():
            target = key if key in props else lowered.get(_norm_label(str(key)))
            if target is not None:
                out[target] = repair(value, props[target], root)
        return out
    if kind == "array":
        if isinstance(data, str | dict):
            data = [data]
        if isinstance(data, list):
            limit = schema.get("maxItems")
            items = data[:limit] if isinstance(limit, int) else data
            return [repair(v, schema.get("items", {}), root) for v in items]
        return data
    if kind in ("number", "integer"):
        if isinstance(data, str):
            try:
                data = float(data.strip().rstrip("%"))
            except ValueError:
                return data
        if isinstance(data, int | float) and not isinstance(data, bool):
            lo, hi = schema.get("minimum"), schema.get("maximum")
            if isinstance(lo, int | float):
                data = max(lo, data)
            if isinstance(hi, int | float):
                data = min(hi, data)
            return round(data) if kind == "integer" else float(data)
        return data
    if kind == "boolean" and isinstance(data, str):
        low = data.strip().lower()
        if low in ("true", "yes", "1"):
            return True
        if low in ("false", "no", "0", "none"):
            return False
        return data
    if kind == "string":
        if isinstance(data, int | float) and not isinstance(data, bool):
            data = str(data)
        if isinstance(data, list) and all(isinstance(x, str) for x in data):
            data = "; ".join(data)
        if isinstance(data, str):
            limit = schema.get("maxLength")
            return data[:limit] if isinstance(limit, int) else data
    return data
