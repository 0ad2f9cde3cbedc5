"""Read chat-completion bodies defensively: every shape a server can send is data or a clear fault.

Servers differ (and break) in what they send: `content` as a string, as a list of content parts
(valid OpenAI), as null; `usage` with strings; bodies that are not objects at all. Everything
here either returns well-typed values or raises `ValueError` saying what was wrong, which the
backends turn into a retryable fault.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def scrub_text(text: str) -> str:
    """Replace lone surrogates (not encodable as UTF-8) with U+FFFD and drop NUL characters."""
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return text.replace("\x00", "") if "\x00" in text else text


def loads_bounded(raw: str | bytes) -> Any:
    """Decode JSON; nesting too deep for the decoder is a `ValueError`, not a `RecursionError`.

    Raises:
        ValueError: the text is not JSON, or nests too deep.
    """
    try:
        return json.loads(raw)
    except RecursionError as exc:
        raise ValueError("JSON nests too deep to decode") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"body is not UTF-8: {exc}") from exc


def content_text(content: Any) -> str:
    """Return the text of a message `content`: a string, null, or a list of content parts.

    Raises:
        ValueError: content of any other type (a number, an object), or parts without text.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type", "text") in ("text", "output_text"):
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
                elif isinstance(text, dict) and isinstance(text.get("value"), str):
                    texts.append(text["value"])
        if content and not texts:
            raise ValueError("content parts hold no text")
        return "".join(texts)
    raise ValueError(f"content is a {type(content).__name__}, not text")


def token_count(value: Any) -> int | None:
    """Return a usage count as a non-negative int, or None when the server sent none usable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, float) and value == value and abs(value) < 1e12:
        return max(0, int(value))
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 13:
        return int(value.strip())
    return None


@dataclass(frozen=True)
class ChatBody:
    """The parts of a chat completion the backends use, well typed."""

    content: str
    reasoning: str
    prompt_tokens: int | None
    completion_tokens: int | None
    model: str
    finish_reason: str | None


def _text_field(value: Any) -> str:
    return value if isinstance(value, str) else ""


def read_chat_body(data: Any) -> ChatBody:
    """Read a decoded chat completion body.

    Raises:
        ValueError: the body is not a chat completion (no choices, wrong types, no message).
    """
    if not isinstance(data, dict):
        raise ValueError(f"body is a {type(data).__name__}, not an object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError("no choices in the body")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise ValueError(f"choices[0] is a {type(choice).__name__}, not an object")
    message = choice.get("message")
    if message is None:
        message = {}
    if not isinstance(message, dict):
        raise ValueError(f"message is a {type(message).__name__}, not an object")
    content = scrub_text(content_text(message.get("content")))
    reasoning = _text_field(message.get("reasoning_content")) or _text_field(
        message.get("reasoning")
    )
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    finish = choice.get("finish_reason")
    model = data.get("model")
    return ChatBody(
        content=content,
        reasoning=scrub_text(reasoning),
        prompt_tokens=token_count(usage.get("prompt_tokens")),
        completion_tokens=token_count(usage.get("completion_tokens")),
        model=model if isinstance(model, str) else "",
        finish_reason=finish if isinstance(finish, str) else None,
    )


def delta_text(data: Any) -> str:
    """Return the content text of one streamed chunk ('' for anything that carries none)."""
    if not isinstance(data, dict):
        return ""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    delta = choices[0].get("delta")
    if not isinstance(delta, dict):
        return ""
    try:
        return scrub_text(content_text(delta.get("content")))
    except ValueError:
        return ""
