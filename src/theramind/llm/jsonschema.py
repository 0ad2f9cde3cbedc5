"""Reading the JSON schemas pydantic emits: local `$ref`s and nullable unions, one way."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def follow_ref(schema: Schema, root: Schema) -> Schema | None:
    """Return the `$defs` entry a local `$ref` names, or None when `schema` is no such ref."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return None
    found = root.get("$defs", {}).get(ref.rsplit("/", 1)[-1])
    return found if isinstance(found, dict) else None


def options(schema: Schema) -> list[Schema] | None:
    """Return the non-null options of an `anyOf`/`oneOf`, or None when `schema` is no union."""
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [o for o in schema[key] if o.get("type") != "null"]
    return None


def resolve(schema: Schema, root: Schema, *, first: bool = False) -> Schema:
    """Return the schema that `schema` stands for: its `$ref` target, or its one union option.

    A union of several non-null options stays as it is, unless `first` picks the first of
    them (enough to build a valid instance). A lone `allOf` is unwrapped.
    """
    target = follow_ref(schema, root)
    if target is not None:
        return resolve(target, root, first=first)
    choices = options(schema)
    if choices is not None:
        if len(choices) == 1 or (first and choices):
            return resolve(choices[0], root, first=first)
        return schema
    every = schema.get("allOf")
    if isinstance(every, list) and len(every) == 1:
        return resolve(every[0], root, first=first)
    return schema
