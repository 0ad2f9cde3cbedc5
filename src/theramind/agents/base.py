"""Shared plumbing for the agents: running a structured call and rendering context blocks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from theramind.errors import ModelError
from theramind.llm import ModelRouter, StructuredResult
from theramind.llm.types import Message, Usage
from theramind.locales import PromptSet, english, escape_text
from theramind.records import CallUsage, Formulation, Quoted
from theramind.text import shorten, token_chars

T = TypeVar("T", bound=BaseModel)
COUNSELOR = "counselor"


@dataclass
class AgentOutput(Generic[T]):
    """An agent's validated answer and the call that produced it."""

    value: T
    call: CallUsage

    @property
    def fallback(self) -> bool:
        """Whether the documented fallback replaced the model's answer."""
        return self.call.fallback


def call_usage(role: str, agent: str, usage: Usage, **marks: Any) -> CallUsage:
    """Describe one model call from its `Usage`; `marks` adds attempts, fallback or error."""
    return CallUsage(
        role=role,
        agent=agent,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        latency_s=round(usage.latency_s, 4),
        **marks,
    )


def usage_of(agent: str, result: StructuredResult[T], role: str = COUNSELOR) -> CallUsage:
    """Summarise a structured call as a `CallUsage`."""
    return call_usage(
        role,
        agent,
        result.usage,
        attempts=result.attempts,
        fallback=result.fallback,
        error=result.errors[-1][:300] if result.errors else None,
    )


def run_structured(
    router: ModelRouter,
    agent: str,
    messages: list[Message],
    schema: type[T],
    fallback: Callable[[], T],
    *,
    role: str = COUNSELOR,
    max_tokens: int | None = None,
) -> AgentOutput[T]:
    """Run a structured call that always yields a value (the fallback when the model fails)."""
    try:
        result = router.structured(role, messages, schema, fallback=fallback, max_tokens=max_tokens)
    except ModelError as exc:  # defensive: the fallback should make this unreachable
        value = fallback()
        return AgentOutput(value, CallUsage(role=role, agent=agent, fallback=True, error=str(exc)))
    return AgentOutput(result.value, usage_of(agent, result, role))


def format_recent(turns: Sequence[Quoted], limit: int, prompts: PromptSet | None = None) -> str:
    """Render the last `limit` exchanges of this session, labelled in the prompts' language."""
    prompts = prompts or english()
    if limit <= 0 or not turns:
        return prompts.text("labels.start_of_session")
    colon = prompts.text("labels.colon")
    patient, counselor = prompts.text("labels.patient"), prompts.text("labels.counselor")
    lines = []
    for t in turns[-limit:]:
        lines.append(f"{patient}{colon}{t.patient_text}")
        lines.append(f"{counselor}{colon}{t.reply}")
    return "\n".join(lines)


def recent_messages(turns: Sequence[Quoted], limit: int) -> list[Message]:
    """Return the last `limit` exchanges as chat messages, their text escaped like any data."""
    out: list[Message] = []
    for t in turns[-limit:] if limit > 0 else []:
        out.append({"role": "user", "content": escape_text(t.patient_text)})
        out.append({"role": "assistant", "content": escape_text(t.reply)})
    return out


def system_and_user(
    prompts: PromptSet, key: str, system: dict[str, object], user: dict[str, object]
) -> list[Message]:
    """Build a system message of instructions and a user message of data from `key`'s pair.

    `key` names `<key>_system` and `<key>_user`; every slot value is escaped by the renderer.
    """
    return [
        {"role": "system", "content": prompts.render(f"{key}_system", **system)},
        {"role": "user", "content": prompts.render(f"{key}_user", **user)},
    ]


def format_formulation(
    formulation: Formulation | None,
    *,
    intake: str = "",
    max_tokens: int | None = None,
    prompts: PromptSet | None = None,
) -> str:
    """Render the working formulation compactly, within `max_tokens` (≈ chars / 4) when given.

    Before the first formulation exists, the intake's presenting problem stands in for it,
    marked provisional. Under a budget each list keeps its first items and each item is cut,
    so the block stays the same size however long treatment runs.
    """
    labels = (prompts or english()).group("labels")
    budget = None if max_tokens is None else token_chars(max_tokens)
    if formulation is None:
        if not intake.strip():
            return labels["none_yet"]
        text = labels["provisional"] + " ".join(intake.split())
        return text if budget is None else shorten(text, budget)
    per_list, item_chars = (3, 90) if budget is not None else (None, 10_000)
    sections = [(labels[key], values) for key, values in formulation.sections()]
    lines = [f"{labels['severity']}: {formulation.severity}"]
    used = len(lines[0])
    for name, values in sections:
        items = [shorten(v, item_chars) for v in values[:per_list] if v.strip()]
        if not items:
            continue
        line = f"{name}: " + labels["list_separator"].join(items)
        if budget is not None and used + 1 + len(line) > budget:
            room = budget - used - 1
            if room >= 40:
                lines.append(shorten(line, room))
            break
        lines.append(line)
        used += 1 + len(line)
    return "\n".join(lines[1:] + lines[:1])
