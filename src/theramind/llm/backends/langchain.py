"""Adapter for any LangChain `BaseChatModel` a user passes in."""

from __future__ import annotations

import time
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from theramind.errors import ModelError
from theramind.llm.backends import TransientModelError
from theramind.llm.parsing import split_reasoning
from theramind.llm.types import BaseBackend, Completion, Message, Request, Usage

_KINDS = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


def to_langchain(messages: list[Message]) -> list[BaseMessage]:
    """Convert chat messages to LangChain message objects."""
    return [_KINDS[m["role"]](content=m["content"]) for m in messages]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


class LangChainBackend(BaseBackend):
    """Runs requests through a LangChain chat model; structured output is prompted and parsed."""

    name = "langchain"
    constraint = "prompt"

    def __init__(self, model: BaseChatModel) -> None:
        self.chat_model = model
        self.model = getattr(model, "model_name", None) or type(model).__name__

    def complete(self, request: Request) -> Completion:
        """Invoke the chat model once."""
        started = time.perf_counter()
        try:
            message = self.chat_model.invoke(to_langchain(request.messages))
        except (TimeoutError, ConnectionError) as exc:
            raise TransientModelError(str(exc)) from exc
        except Exception as exc:  # a user's model may raise anything; report it typed
            raise ModelError(f"chat model {self.model} failed: {exc}") from exc
        visible, inline = split_reasoning(_text(message.content))
        extra = getattr(message, "additional_kwargs", {}) or {}
        reasoning = "\n".join(p for p in (extra.get("reasoning_content", ""), inline) if p)
        meta = getattr(message, "usage_metadata", None) or {}
        return Completion(
            text=visible,
            reasoning=reasoning,
            usage=Usage(
                int(meta.get("input_tokens", 0)),
                int(meta.get("output_tokens", 0)),
                time.perf_counter() - started,
            ),
            model=self.model,
        )
