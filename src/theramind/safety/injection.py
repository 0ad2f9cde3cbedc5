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
    rf"(?:your|the){_SECRET} {_SECRET_TARGET}\b(?! (?:for|of|on|in) (?:my|a|an|her|his|our)\b)",
    rf"\bwhat (?:is|are|were) (?:your|the){_SECRET} {_SECRET_TARGET}\b",
    # chat-template tokens and fake system turns
    r"<\|(?:im_start|im_end|system|endoftext|begin_of_text|start_header_id)\|>",
    r"(?:^|\n)[ \t]*(?:###[ \t]*)?(?:system|developer)[ \t]*:",
    r"\[(?:system|inst)\]|<<sys>>",
    r"\bnew instructions\s*:",
    r"\bend of (?:the )?(?:system )?prompt\b",
    # forged prompt markup: the tags of this project's templates, and heading-style roles
    r"</?(?:memories|message|recent|formulation|previous_formulation|session|focus|transcript|"
    r"rubric|crisis_protocol|patient|patient_name|counselor|background|today|system|"
    r"instructions?)\b[^<>]{0,40}>",
    r"(?:^|\n)[ \t]*#{2,}[ \t]*(?:instruction|system|prompt|rule)s?\b",
    r"\b(?:system|developer|admin|diagnostician|strategist|assistant) "
    r"(?:override|rules?|instructions?|policy|prompt)\b",
    # switching off the safety layers
    r"\brisk_level\b",
    r"\b(?:set|mark|record|rate|change|put) (?:my|the|this|his|her|this patient's) risk"
    r"(?: level)? (?:to|as|at) (?:none|zero|low|nothing)\b",
    r"\b(?:do not|never|stop) (?:flag|mark|screen|report)\w* (?:anything|me|what i say|my)\b",
    r"\b(?:disable|switch off|turn off|deactivate|override|bypass|skip|ignore) (?:your |the |all "
    r"|any )?(?:safety|crisis|risk) (?:mode|protocol|checks?|screen\w*|layers?|filters?|rules?)\b",
    # replacing or extracting the instructions in other words
    r"\bforget (?:everything|all|what) (?:you were|you have been|you are) "
    r"(?:told|given|instructed|programmed)\b",
    r"\b(?:your|the) new (?:instructions|rules|orders) (?:are|is)\b",
    r"\brepeat (?:the|all|everything|all the) (?:text|words|lines|messages?) above\b",
    r"\bwhat were you (?:told|instructed|programmed|asked) to (?:do|say)\b",
    r"\b(?:stop being|you are not|you are no longer) (?:a |an |my )?(?:counsel?lor|therapist)\b",
    r"\bact as (?:my|a|an) (?:doctor|psychiatrist|pharmacist|physician|dealer)\b",
    r"\bas (?:the|your) (?:developer|admin|administrator|creator|programmer) of\b",
    r"\b(?:output|print|show|dump) (?:your|the) (?:configuration|config|settings)\b",
    # Chinese
    r"(?:忽略|无视|忘掉|忘记|不要理会)(?:你)?(?:之前|以上|前面|上面|原来)?的?(?:所有|全部|一切)?的?"
    r"(?:指令|指示|规则|设定|提示词|要求)",
    r"(?:系统)?提示词(?:原文|全文|内容)?",
    r"(?:不再是|别再当|不要再当|停止扮演)(?:心理)?(?:咨询师|治疗师|医生)",
    r"(?:^|\n)[ \t]*(?:系统|开发者)[ \t]*[：:]",
    r"风险等级.{0,6}(?:一律|永远|都|总是)?.{0,2}(?:无|none|为零|是零)",
    r"不要(?:再)?把.{0,12}(?:标|记|判)(?:成|为|作)?(?:风险|危险)",
)
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS))


def detect_injection(text: str) -> bool:
    """Return whether a message tries to override or extract the counselor's instructions."""
    if not text:
        return False
    return bool(_INJECTION.search(normalize_text(text)) or _INJECTION.search(text.lower()))
