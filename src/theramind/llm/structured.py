"""Validated structured output: prompt for a schema, parse, repair, validate, retry, fall back."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Generic, TypeAlias, TypeVar, Union

from pydantic import BaseModel, ValidationError

from theramind.llm.jsonschema import follow_ref, options
from theramind.llm.parsing import extract_json, repair
from theramind.llm.types import Completion, Message, Usage

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)


@dataclass
class StructuredResult(Generic[T]):
    """A validated object plus how it was obtained."""

    value: T
    attempts: int
    fallback: bool = False
    errors: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    reasoning: str = ""


Fallback: TypeAlias = Union[T, Callable[[], T], None]  # noqa: UP007 (a runtime alias)


@cache
def json_schema_of(schema: type[BaseModel]) -> dict[str, Any]:
    """Return the JSON schema of a pydantic model (cached per class)."""
    return schema.model_json_schema()


def _describe(prop: dict[str, Any], root: dict[str, Any]) -> str:
    if "$ref" in prop:
        sub = follow_ref(prop, root) or {}
        inner = ", ".join(
            f"{k}: {_describe(v, root)}" for k, v in sub.get("properties", {}).items()
        )
        return "{" + inner + "}"
    if "anyOf" in prop:
        opts = options(prop) or []
        return _describe(opts[0], root) if opts else "null"
    if "const" in prop:
        return "exactly " + json.dumps(prop["const"])
    if "enum" in prop:
        return "one of " + " | ".join(json.dumps(v) for v in prop["enum"])
    kind = prop.get("type", "value")
    if kind == "array":
        item = _describe(prop.get("items", {}), root)
        most = prop.get("maxItems")
        return f"list of {item}" + (f" (at most {most})" if most else "")
    if kind in ("number", "integer") and ("minimum" in prop or "maximum" in prop):
        return f"{kind} from {prop.get('minimum', '-inf')} to {prop.get('maximum', 'inf')}"
    if kind == "object" and "additionalProperties" in prop:
        return "object"
    return str(kind)


@cache
def schema_instructions(schema: type[BaseModel]) -> str:
    """Render a compact instruction that tells a model which JSON object to return (cached)."""
    root = json_schema_of(schema)
    lines = [f"Reply with one JSON object only, no other text. {schema.__doc__ or ''}".strip()]
    for name, prop in root.get("properties", {}).items():
        desc = prop.get("description", "")
        lines.append(f'- "{name}": {_describe(prop, root)}' + (f". {desc}" if desc else ""))
    return "\n".join(lines)


def with_schema(messages: list[Message], schema: type[BaseModel]) -> list[Message]:
    """Append the schema instruction to the system message (or add one)."""
    instruction = schema_instructions(schema)
    out: list[Message] = [m.copy() for m in messages]
    if out and out[0]["role"] == "system":
        out[0]["content"] = out[0]["content"].rstrip() + "\n\n" + instruction
    else:
        out.insert(0, {"role": "system", "content": instruction})
    return out


def parse_structured(text: str, schema: type[T], *, context: dict[str, Any] | None = None) -> T:
    """Parse, repair and validate one model output.

    Raises:
        ValueError: when no JSON object is found or validation fails (message says why).
    """
    data = extract_json(text)
    try:
        data = repair(data, json_schema_of(schema))
        return schema.model_validate(data, context=context)
    except RecursionError as exc:
        raise ValueError("the JSON object nests too deep") from exc
    except (TypeError, AttributeError) as exc:  # a validator met a shape it did not expect
        raise ValueError(f"unexpected shape: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'object'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(problems) from exc


def feedback(messages: list[Message], completion: Completion, error: str) -> list[Message]:
    """Return the conversation extended with the bad output and what was wrong with it."""
    return [
        *messages,
        {"role": "assistant", "content": completion.text[:2000]},
        {
            "role": "user",
            "content": f"That output was invalid: {error}. Reply again with only the corrected "
            "JSON object.",
        },
    ]


def add_usage(a: Usage, b: Usage) -> Usage:
    """Sum two usages."""
    return Usage(
        a.prompt_tokens + b.prompt_tokens,
        a.completion_tokens + b.completion_tokens,
        a.latency_s + b.latency_s,
    )


def resolve_fallback(fallback: Fallback[T]) -> T | None:
    """Return the fallback value, calling it when it is a factory."""
    if fallback is None or isinstance(fallback, BaseModel):
        return fallback
    return fallback()


@dataclass
class Attempts(Generic[T]):
    """The state of one structured call across its attempts (shared by sync and async)."""

    schema: type[T]
    convo: list[Message]
    budget: int
    context: dict[str, Any] | None = None
    count: int = 0
    errors: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    reasoning: str = ""
    raw: str = ""
    """The last text the model sent."""

    def open(self) -> bool:
        """Whether another attempt is allowed."""
        return self.count < self.budget + 1

    def take(self, completion: Completion) -> T | None:
        """Account for a completion; return its validated value, or None after feeding back."""
        self.count += 1
        self.usage = add_usage(self.usage, completion.usage)
        self.reasoning = completion.reasoning or self.reasoning
        self.raw = completion.text
        try:
            return parse_structured(completion.text, self.schema, context=self.context)
        except ValueError as exc:
            log.info("invalid %s (attempt %d): %s", self.schema.__name__, self.count, exc)
            self.errors.append(str(exc))
            self.convo = feedback(self.convo, completion, str(exc))
            return None

    def result(self, value: T) -> StructuredResult[T]:
        """Wrap a validated value."""
        return StructuredResult(value, self.count, False, self.errors, self.usage, self.reasoning)
