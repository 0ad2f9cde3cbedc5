"""Detect prompt-injection attempts addressed to the counselor (answered in role, not obeyed)."""

from __future__ import annotations

import re

from theramind.safety.screen import normalize_text

_TARGET = (
    r"(?:system prompt|system message|prompt|instructions|initial instructions|"
    r"hidden instructions|developer message|guidelines|rules|programming|formulation|"
    r"case formulation|hidden notes|internal notes|case notes|configuration|context window)"
)
_SECRET = (
    r"(?: full| entire| exact| hidden| secret| original| initial| internal| system| verbatim)*"
)
_SECRET_TARGET = (
    r"(?:system prompt|system message|prompt|formulation|case formulation|hidden notes|"
    r"internal notes|hidden instructions|initial instructions|original instructions|"
    r"exact instructions|developer message)"
)
_IGNORE = r"(?:ignore|disregard|forget|override|bypass|drop|discard)"
_EARLIER = r"(?:previous|prior|above|earlier|initial|original|system|safety)"
_PATTERNS = (
    # "ignore / disregard your previous instructions"
    rf"\b{_IGNORE} (?:all (?:of )?)?(?:your(?: \w+)? {_TARGET}"
    rf"|(?:the|any|these|those|all) {_EARLIER}(?: \w+)? {_TARGET}"
    r"|all (?:instructions|prompts|guidelines))\b",
    # persona switches
    r"\byou are now (?:dan|an? (?:unfiltered|unrestricted|uncensored|jailbroken|evil) \w+"
    r"|in (?:developer|god|jailbreak|dan) mode)\b",
    r"\byou are no longer (?:a |an |my )?(?:counsel?lor|therapist|assistant|bound by)\b",
    r"\b(?:developer|god|jailbreak|dan) mode\b",
    r"\bdo anything now\b",
    r"\bjailbr(?:eak|oken)\b",
    r"\bprompt injection\b",
    r"\b(?:pretend|act as if|imagine|roleplay that) (?:you are|you have) (?:no|not) "
    r"(?:rules|restrictions|limits|guidelines|instructions|a (?:counsel?lor|therapist))\b",
    r"\bfrom now on,? you (?:will|must|are to|shall) "
    r"(?:respond|act|answer|reply|behave|ignore)\b",
    # extraction
    rf"\b(?:print|reveal|dump|leak|output|expose|disclose|paste|copy) (?:out )?(?:me )?"
    rf"(?:your|the){_SECRET} {_TARGET}\b",
    rf"\b(?:show|tell|give|repeat|read|share|display|list)(?: me| out| back)? "
    rf"(?:your|the){_SECRET} {_SECRET_TARGET}\b",
    rf"\bwhat (?:is|are|were) (?:your|the){_SECRET} {_SECRET_TARGET}\b",
    # chat-template tokens and fake system turns
    r"<\|(?:im_start|im_end|system|endoftext|begin_of_text|start_header_id)\|>",
    r"(?:^|\n)[ \t]*(?:###[ \t]*)?(?:system|developer)[ \t]*:",
    r"\[(?:system|inst)\]|<<sys>>",
    r"\bnew instructions\s*:",
    r"\bend of (?:the )?(?:system )?prompt\b",
)
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS))


def detect_injection(text: str) -> bool:
    """Return whether a message tries to override or extract the counselor's instructions."""
    if not text:
        return False
    return bool(_INJECTION.search(normalize_text(text)) or _INJECTION.search(text.lower()))
