"""The model layer: one router for every model call, several backends behind it."""

from theramind.llm.backends import TransientModelError, build_backend
from theramind.llm.backends.scripted import ScriptedBackend
from theramind.llm.router import ModelRouter, UsageMeter
from theramind.llm.structured import StructuredResult
from theramind.llm.types import BaseBackend, Completion, Message, Request, Usage

__all__ = [
    "BaseBackend",
    "Completion",
    "Message",
    "ModelRouter",
    "Request",
    "ScriptedBackend",
    "StructuredResult",
    "TransientModelError",
    "Usage",
    "UsageMeter",
    "build_backend",
]
