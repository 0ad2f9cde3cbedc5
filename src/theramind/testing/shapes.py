"""Response shapes the stub server can answer with: broken bodies, odd types, hostile content.

Each shape is what some server (or a broken proxy) really sends. `SHAPES` describes them all;
the fault tests and the soak run every one through the public API.
"""

from __future__ import annotations

import json
from typing import Any

TRANSPORT = {
    "http_500": "HTTP 500 from the server",
    "http_429": "HTTP 429, rate limited",
    "http_400": "HTTP 400, the request rejected",
    "timeout": "no answer before the client's timeout, then HTTP 504",
    "drop": "the connection closed without an answer",
    "truncated_body": "a body shorter than its Content-Length, then the connection closed",
    "trickle": "a valid body sent a few bytes at a time, slower than the deadline",
    "html_body": "HTTP 200 with an HTML error page",
    "sse_body": "an event stream answering a request that asked for none",
    "deep_body": "a body nested 30,000 levels deep",
}
BODY = {
    "no_choices": "an object without `choices`",
    "empty_choices": "`choices: []`",
    "choices_str": '`choices: ["str"]`',
    "message_str": '`message: "str"`',
    "message_null": "`message: null`",
    "content_null": "`content: null`",
    "content_int": "`content: 42`",
    "content_dict": "`content` as an object",
    "content_parts": "`content` as a list of text parts (valid OpenAI)",
    "usage_str": '`usage.prompt_tokens: "lots"`',
}
CONTENT = {
    "empty": "empty content",
    "malformed_json": "JSON cut in half",
    "unfenced_prose": "the JSON wrapped in chatty prose",
    "out_of_range": "a number above its schema maximum",
    "wrong_enum": "a label outside its enum",
    "wrong_role": "the model speaking as the patient",
    "wrong_types": "every field of the object a list of objects",
    "deep_nesting": "content `'{\"a\":[' * 30000`",
    "lone_surrogate": "a lone UTF-16 surrogate in the content",
    "nul_bytes": "NUL characters in the content",
    "unclosed_think": "a `<think>` block that never closes",
    "huge_reply": "10 words of 100,000 characters each",
}
SHAPES: dict[str, str] = {**TRANSPORT, **BODY, **CONTENT}
"""Every shape, by name, with what it is."""

VALID_SHAPES = frozenset({"content_parts", "usage_str", "unfenced_prose"})
"""Shapes that carry a usable answer: the client must read it, not fall back."""


def shape_content(fault: str, content: str, structured: bool) -> str:
    """Return the message content a content-level shape turns `content` into."""
    if fault == "empty":
        return ""
    if fault == "wrong_role":
        return "Patient: I don't know what to say anymore."
    if fault == "malformed_json" and structured:
        return content[: max(1, len(content) // 2)]
    if fault == "unfenced_prose" and structured:
        return f"Sure! Here is the answer you asked for: {content} Hope that helps."
    if fault == "wrong_types" and structured:
        try:
            value = json.loads(content)
        except ValueError:
            return content
        if isinstance(value, dict):
            return json.dumps({k: [{"v": v}] for k, v in value.items()})
        return content
    if fault == "deep_nesting":
        return '{"a":[' * 30000
    if fault == "lone_surrogate":
        return content[: len(content) // 2] + "\ud800" + content[len(content) // 2 :]
    if fault == "nul_bytes":
        return content.replace(" ", "\x00 ", 3) + "\x00"
    if fault == "unclosed_think":
        return "<think>Let me think about this for a long while " + content
    if fault == "huge_reply":
        return " ".join(["x" * 100_000] * 10)
    return content


def completion_body(payload: dict[str, Any], fault: str | None) -> Any:
    """Return the JSON body of a completion, reshaped by a body-level shape."""
    if fault is None or fault not in BODY:
        return payload
    choice = payload["choices"][0]
    message = choice["message"]
    if fault == "no_choices":
        return {k: v for k, v in payload.items() if k != "choices"}
    if fault == "empty_choices":
        return {**payload, "choices": []}
    if fault == "choices_str":
        return {**payload, "choices": [message["content"]]}
    if fault == "message_str":
        return {**payload, "choices": [{**choice, "message": message["content"]}]}
    if fault == "message_null":
        return {**payload, "choices": [{**choice, "message": None}]}
    reshaped = dict(message)
    if fault == "content_null":
        reshaped["content"] = None
    elif fault == "content_int":
        reshaped["content"] = 42
    elif fault == "content_dict":
        reshaped["content"] = {"text": message["content"]}
    elif fault == "content_parts":
        text = message["content"]
        half = len(text) // 2
        reshaped["content"] = [
            {"type": "text", "text": text[:half]},
            {"type": "text", "text": text[half:]},
        ]
    elif fault == "usage_str":
        return {**payload, "usage": {**payload.get("usage", {}), "prompt_tokens": "lots"}}
    return {**payload, "choices": [{**choice, "message": reshaped}]}


def html_page() -> bytes:
    """An error page such as a proxy in front of the server sends."""
    return b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def deep_body() -> bytes:
    """A body that nests past any decoder's recursion limit."""
    return ('{"a":[' * 30000).encode()
