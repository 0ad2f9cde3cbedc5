"""The responder: writes the counselor's reply; reasoning stays apart from what the patient sees."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from theramind.agents.base import COUNSELOR, call_usage, recent_messages
from theramind.agents.strategist import strategy_text, therapy_name
from theramind.agents.turn import TurnView
from theramind.errors import ModelError
from theramind.llm import ModelRouter
from theramind.llm.parsing import split_reasoning, strip_role_prefix
from theramind.llm.types import Message
from theramind.locales import PromptSet, english
from theramind.memory.recall import format_memories
from theramind.records import CallUsage
from theramind.safety import (
    check_crisis_reply,
    crisis_instructions,
    crisis_template,
    sanitize_reply,
)
from theramind.text import cut_units, has_cjk, word_units

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|[。！？]")
CHARS_PER_WORD = 12
"""A reply is capped at `max_words * CHARS_PER_WORD` characters as well as at `max_words`."""


@dataclass
class ReplyOutput:
    """The checked reply and how it was produced."""

    reply: str
    reasoning: str
    call: CallUsage
    replaced: list[str] = field(default_factory=list)


def limit_words(text: str, max_words: int) -> str:
    """Cut a reply to `max_words`, at a sentence end when one falls in the second half.

    Chinese and Japanese count two characters a word (`theramind.text.word_units`).
    """
    if not has_cjk(text):
        words = text.split()
        if len(words) <= max_words:
            return " ".join(words)
        cut = " ".join(words[:max_words])
    else:
        text = " ".join(text.split())
        cut, was_cut = cut_units(text, max_words)
        if not was_cut:
            return text
    ends = [m.end() for m in _SENTENCE_END.finditer(cut)]
    if ends and ends[-1] >= len(cut) // 2:
        return cut[: ends[-1]]
    return cut.rstrip(",;:，；：") + ("…" if has_cjk(cut) else "...")


def limit_chars(text: str, max_chars: int) -> str:
    """Cut a reply to `max_chars`, at a sentence end or a space in its second half if any."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    ends = [m.end() for m in _SENTENCE_END.finditer(cut)]
    if ends and ends[-1] >= max_chars // 2:
        return cut[: ends[-1]]
    space = cut.rfind(" ")
    if space >= max_chars // 2:
        cut = cut[:space]
    return cut.rstrip(",;: ") + "..."


def fallback_reply(
    strategy: str, emotion: str, closing: bool, prompts: PromptSet | None = None
) -> str:
    """Return the safe template reply for a strategy, in the prompts' language."""
    prompts = prompts or english()
    if closing:
        return prompts.text("responder.closing_fallback")
    texts = prompts.group("responder.fallbacks")
    label = prompts.get(f"labels.emotions.{emotion}", emotion)
    template = texts.get(strategy, texts["minimal_encouragement"])
    return template.replace("{emotion}", label)


def _call(
    router: ModelRouter,
    messages: list[Message],
    on_token: Callable[[str], None] | None,
    max_tokens: int,
) -> tuple[str, str, CallUsage]:
    before = router.meter.snapshot().get(COUNSELOR, {})
    if on_token is None:
        completion = router.complete(COUNSELOR, messages, max_tokens=max_tokens)
        call = call_usage(COUNSELOR, "responder", completion.usage)
        return completion.text, completion.reasoning, call
    chunks = []
    started = time.perf_counter()
    for chunk in router.stream(COUNSELOR, messages, max_tokens=max_tokens):
        chunks.append(chunk)
        on_token(chunk)
    after = router.meter.snapshot().get(COUNSELOR, {})
    text, reasoning = split_reasoning("".join(chunks))
    return (
        text,
        reasoning,
        CallUsage(
            role=COUNSELOR,
            agent="responder",
            prompt_tokens=int(after.get("prompt_tokens", 0) - before.get("prompt_tokens", 0)),
            completion_tokens=int(
                after.get("completion_tokens", 0) - before.get("completion_tokens", 0)
            ),
            latency_s=round(time.perf_counter() - started, 4),
        ),
    )


def respond(
    router: ModelRouter, turn: TurnView, *, on_token: Callable[[str], None] | None = None
) -> ReplyOutput:
    """Write a normal (or closing) counselor reply (one call), checked and bounded.

    The reply follows the turn's `choice`; `on_token` receives it as it streams.
    """
    prompts, taxonomy, plan, perception = turn.prompts, turn.taxonomy, turn.plan, turn.perception
    strategy, focus, closing = turn.choice.strategy, turn.choice.focus, turn.closing
    max_words = turn.limits.reply_max_words
    name, description = strategy_text(prompts, taxonomy, strategy)
    texts = prompts.group("responder")
    # The injection guard applies on every turn kind, closing turns included.
    mode = (texts["closing_mode"] if closing else "") + (
        texts["injection_mode"] if turn.injection else ""
    )
    system = prompts.render(
        "responder.respond_system",
        session_no=plan.session_no,
        therapy=" + ".join(therapy_name(prompts, taxonomy, t) for t in plan.therapies),
        phase=plan.phase,
        strategy=name,
        strategy_description=description,
        emotion=prompts.get(f"labels.emotions.{perception.emotion}", perception.emotion),
        intensity=perception.intensity,
        max_words=max_words,
        max_chars=max_words * int(prompts.get("labels.chars_per_word", "6")),
        mode=mode,
    )
    user = prompts.render(
        "responder.respond_user",
        name=plan.pseudonym or prompts.text("labels.the_patient"),
        focus=focus or plan.focus or prompts.text("labels.open"),
        memories=format_memories(turn.recalled) or prompts.text("labels.nothing_relevant"),
        message=turn.message,
    )
    messages: list[Message] = [
        {"role": "system", "content": system},
        *recent_messages(turn.recent, turn.limits.recent_turns_in_prompt),
        {"role": "user", "content": user},
    ]
    replaced: list[str] = []
    try:
        text, reasoning, call = _call(router, messages, on_token, max_tokens=max_words * 3)
    except ModelError as exc:
        log.warning("responder model failed, using the %s template: %s", strategy, exc)
        text, reasoning = "", ""
        call = CallUsage(role=COUNSELOR, agent="responder", fallback=True, error=str(exc)[:300])
    text = limit_words(strip_role_prefix(text), max_words)
    if len(text) > max_words * CHARS_PER_WORD:
        text = limit_chars(text, max_words * CHARS_PER_WORD)
        replaced.append("reply_cut")
    text, violations = sanitize_reply(text)
    replaced += [v.kind for v in violations]
    if word_units(text) < 2:
        text = fallback_reply(strategy, perception.emotion, closing, prompts)
        call.fallback = True
        replaced.append("empty_reply")
    return ReplyOutput(text, reasoning, call, replaced)


def respond_crisis(router: ModelRouter, turn: TurnView) -> ReplyOutput:
    """Write the crisis reply (one call); replace it with the safe template if it lacks anything.

    The reply answers the screen's categories (suicidal ideation when it named none).
    """
    prompts, plan, level, resources = turn.prompts, turn.plan, turn.risk_level, turn.resources
    categories = turn.screen.categories or ["suicidal_ideation"]
    system = prompts.render(
        "responder.crisis_system",
        session_no=plan.session_no,
        instructions=crisis_instructions(level, categories, resources, prompts),
        mode=prompts.text("responder.injection_mode") if turn.injection else "",
    )
    user = prompts.render(
        "responder.crisis_user",
        name=plan.pseudonym or prompts.text("labels.the_patient"),
        message=turn.message,
    )
    messages: list[Message] = [
        {"role": "system", "content": system},
        *recent_messages(turn.recent, turn.limits.recent_turns_in_prompt),
        {"role": "user", "content": user},
    ]
    try:
        text, reasoning, call = _call(router, messages, None, max_tokens=300)
    except ModelError as exc:
        text, reasoning = "", ""
        call = CallUsage(role=COUNSELOR, agent="responder", fallback=True, error=str(exc)[:300])
    text = strip_role_prefix(text)
    missing = check_crisis_reply(text, resources, categories, prompts)
    if missing:
        log.info("crisis reply lacked %s; using the safe template", ", ".join(missing))
        text = crisis_template(
            level, categories, resources, name=plan.pseudonym or None, prompts=prompts
        )
        call.fallback = True
    return ReplyOutput(text, reasoning, call, [f"crisis_missing:{m}" for m in missing])
