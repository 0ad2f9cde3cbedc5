"""The deterministic safety layer: risk screen, crisis protocol, reply checks, injection guard."""

from theramind.safety.checks import (
    MEDICATION_REDIRECT,
    SAFE_REFLECTION,
    Violation,
    ViolationKind,
    check_reply,
    sanitize_reply,
)
from theramind.safety.injection import detect_injection
from theramind.safety.patterns import PatternFile, load_patterns
from theramind.safety.protocol import (
    CRISIS_MAX_WORDS,
    check_crisis_reply,
    checkin_prompt,
    crisis_focus,
    crisis_instructions,
    crisis_template,
    safety_reminder,
)
from theramind.safety.resources import CrisisResource, CrisisResources, crisis_resources
from theramind.safety.screen import normalize_text, screen, screen_many

__all__ = [
    "CRISIS_MAX_WORDS",
    "MEDICATION_REDIRECT",
    "SAFE_REFLECTION",
    "CrisisResource",
    "CrisisResources",
    "PatternFile",
    "Violation",
    "ViolationKind",
    "check_crisis_reply",
    "check_reply",
    "checkin_prompt",
    "crisis_focus",
    "crisis_instructions",
    "crisis_resources",
    "crisis_template",
    "detect_injection",
    "load_patterns",
    "normalize_text",
    "safety_reminder",
    "sanitize_reply",
    "screen",
    "screen_many",
]
