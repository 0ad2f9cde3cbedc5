"""The crisis protocol: responder instructions, a safe template reply, and its checks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from theramind.records import RiskEvent
from theramind.safety.resources import CrisisResource, CrisisResources
from theramind.safety.screen import normalize_text

if TYPE_CHECKING:
    from theramind.locales import PromptSet

Focus = Literal["self", "others", "abuse"]
CRISIS_MAX_WORDS = 90

_SELF = {
    "hopelessness",
    "passive_death_wish",
    "suicidal_ideation",
    "method_or_means",
    "intent",
    "plan",
    "past_attempt",
    "self_harm",
}

CRISIS_INSTRUCTIONS = """<crisis_protocol>
The patient's latest message shows {level} risk ({categories}). Their safety now comes before the
therapy plan, the chosen strategy and any wish to close the session.
Reply warmly, in plain words, in at most {max_words} words, in this order:
1. Acknowledge what they shared and the feeling behind it, without judgement.
2. Ask directly and calmly about safety: {question}
3. Give these crisis resources, exactly as written here:
{resources}
4. Say that you are here and will keep talking with them; invite them to tell you more.
{urgency}Never end, pause or wrap up the session. Never dismiss, minimise or argue ("it's not that
bad", "calm down"). No diagnosis, no advice about medication, no promise of secrecy, no details
about methods.
</crisis_protocol>"""

_QUESTION_HINTS: dict[Focus, str] = {
    "self": "ask whether they are thinking about killing themselves or ending their life right "
    "now, and whether they have a plan or the means. Use those plain words; asking does not put "
    "the idea in their head.",
    "others": "ask whether they feel they might act on the thoughts of harming someone, and "
    "whether anyone is in danger right now.",
    "abuse": "ask whether they are safe right now and whether anyone, especially a child, is in "
    "danger. Do not press for details.",
}
_URGENT = (
    "The risk is high: urge them to contact emergency services now if they might act soon, and "
    "to stay near someone they trust, away from any means.\n"
)

_OPENERS: dict[Focus, tuple[str, ...]] = {
    "self": (
        "Thank you for telling me{name}. That took courage, and I'm taking it seriously.",
        "I'm really glad you told me{name}. What you're carrying sounds incredibly heavy.",
        "I hear how much pain you're in{name}, and I'm glad you said it out loud.",
    ),
    "others": (
        "Thank you for being honest with me about these thoughts{name}. Telling me matters.",
        "I'm glad you told me{name}. Thoughts like these can be really frightening to carry.",
    ),
    "abuse": (
        "Thank you for trusting me with this{name}. What is happening to you is not your fault.",
        "I'm really glad you told me{name}. No one deserves to be hurt or to feel unsafe.",
    ),
}
_QUESTIONS: dict[Focus, tuple[str, ...]] = {
    "self": (
        "Are you having thoughts of ending your life right now?",
        "Are you thinking about killing yourself right now?",
        "Can I ask you directly: are you thinking of ending your life, or are you safe right now?",
    ),
    "others": (
        "Do you feel you might act on these thoughts, and is everyone safe right now?",
        "Is anyone in danger right now, and do you feel you could act on these thoughts?",
    ),
    "abuse": (
        "Are you safe right now, and is anyone else, like a child, in danger?",
        "Is it safe for you where you are right now?",
    ),
}
_CLOSERS = (
    "I'm here, and I want to keep talking with you.",
    "I'm right here with you, and we can keep talking.",
    "You don't have to face this alone; I'm here to keep talking.",
)


def crisis_focus(categories: Sequence[str]) -> Focus:
    """Return whose safety the crisis reply must ask about first."""
    cats = set(categories)
    if cats & _SELF or not cats:
        return "self"
    return "others" if "harm_to_others" in cats else "abuse"


def _localized(prompts: PromptSet | None) -> dict[str, str]:
    """Return a language's crisis texts (`crisis.*` in its prompts); English lives in this module.

    English stays in code so the safety floor holds even when a locale file is broken.
    """
    if prompts is None or prompts.language == "en":
        return {}
    return prompts.group("crisis")


def _options(texts: dict[str, str], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    found = tuple(v for k, v in texts.items() if k.rpartition(".")[0] == key)
    return found or default


def crisis_instructions(
    level: str,
    categories: Sequence[str],
    resources: CrisisResources,
    prompts: PromptSet | None = None,
) -> str:
    """Return the instruction block a responder model gets in a crisis turn."""
    texts = _localized(prompts)
    focus = crisis_focus(categories)
    return texts.get("instructions", CRISIS_INSTRUCTIONS).format(
        level=level,
        categories=", ".join(c.replace("_", " ") for c in categories) or "unspecified",
        max_words=CRISIS_MAX_WORDS,
        question=texts.get(f"question_hints.{focus}", _QUESTION_HINTS[focus]),
        resources=resources.render(),
        urgency=texts.get("urgent", _URGENT) if level == "high" else "",
    )


def _contact(r: CrisisResource) -> str:
    if r.phone and r.text == r.phone:
        how = f"call or text {r.phone}"
    elif r.phone:
        how = f"call {r.phone}"
    else:
        how = r.host or ""
    name = f"the {r.name}" if r.name[0].isdigit() else r.name
    return f"{name} ({how})" if how else name


def _resource_sentences(resources: CrisisResources, urgent: bool, texts: dict[str, str]) -> str:
    if not texts:
        reach = ("call " if resources.emergency_numbers else "contact ") + resources.emergency
        if urgent:
            first = f"If you might act on this or are in danger, please {reach} now."
        else:
            first = f"If you are ever in immediate danger, please {reach}."
        return f"{first} You can also reach {_contact(resources.resources[0])}."
    r = resources.resources[0]
    number = r.phone or r.text
    if number:
        contact = texts["contact_phone"].format(name=r.name, phone=number)
    elif r.host:
        contact = texts["contact_url"].format(name=r.name, host=r.host)
    else:
        contact = r.name
    first = texts["resource_urgent" if urgent else "resource_calm"].format(
        emergency=resources.emergency
    )
    return first + texts["resource_also"].format(contact=contact)


def crisis_template(
    level: str,
    categories: Sequence[str],
    resources: CrisisResources,
    *,
    name: str | None = None,
    seed: int = 0,
    prompts: PromptSet | None = None,
) -> str:
    """Return a safe, warm crisis reply; `seed` picks one of a few phrasings deterministically.

    With `prompts` of another language than English, the reply is written from its `crisis.*`
    texts (a language that lacks them gets English).
    """
    texts = _localized(prompts)
    if texts and not {"resource_urgent", "resource_calm", "resource_also"} <= texts.keys():
        texts = {}
    focus = crisis_focus(categories)
    name_format = texts.get("name_format", ", {name}")
    name_part = name_format.format(name=name.strip()) if name and name.strip() else ""
    openers = _options(texts, f"openers.{focus}", _OPENERS[focus])
    questions = _options(texts, f"questions.{focus}", _QUESTIONS[focus])
    closers = _options(texts, "closers", _CLOSERS)
    opener = openers[seed % len(openers)].format(name=name_part)
    question = questions[seed % len(questions)]
    closer = closers[seed % len(closers)]
    resources_text = _resource_sentences(resources, level == "high", texts)
    return texts.get("joiner", " ").join((opener, question, resources_text, closer))


MAX_CRISIS_CHARS = 1500
"""The longest crisis reply accepted; a longer one is replaced by the safe template."""
_CLAUSE_RE = re.compile(r"[^.!?。！？\n]*(?:[.!?。！？\n]|$)")
"""A clause and its end mark; every match consumes its text, so scanning is linear."""


def _questions(norm: str) -> list[str]:
    """Return the clauses of `norm` that end in a question mark."""
    return [m.group(0) for m in _CLAUSE_RE.finditer(norm) if m.group(0).endswith(("?", "？"))]


_SAFETY_VOCAB: dict[Focus, re.Pattern[str]] = {
    "self": re.compile(
        r"\b(?:safe|safety|suicid\w*|kill(?:ing)? yourself|end(?:ing)? (?:your|your own) life|"
        r"take your (?:own )?life|hurt(?:ing)? yourself|harm(?:ing)? yourself|danger|die|dying|"
        r"alive)\b"
    ),
    "others": re.compile(r"\b(?:safe|safety|danger|hurt\w*|harm\w*|act on|kill\w*|violen\w*)\b"),
    "abuse": re.compile(r"\b(?:safe|safety|unsafe|danger|hurt\w*|harm\w*)\b"),
}
_DISMISSAL = re.compile(
    r"\b(?:(?:end|close|wrap up|finish|stop|pause) (?:the|our|this|today's) "
    r"(?:session|conversation|chat)"
    r"|(?:stop|end|leave it|call it|wrap up) (?:here|there) for (?:today|now)"
    r"|that is (?:all|it) for (?:today|now)|our time is up|we are out of time"
    r"|(?:see|talk to|speak to|speak with) you (?:next (?:time|week|session)|later|soon|tomorrow)"
    r"|goodbye|bye for now"
    r"|(?:it is|it is really|that is) not (?:that|so) bad|could be worse|others have it worse"
    r"|you will (?:be fine|get over it)|everyone feels (?:that way|like that|this way)"
    r"|calm down|cheer up|think positive|snap out of it|look on the bright side|get over it"
    r"|you are (?:just )?(?:overreacting|being dramatic)|do not be (?:silly|dramatic)"
    r"|(?:i am sure )?you do not (?:really )?mean (?:it|that)|just a phase"
    r"|i (?:can not|am unable to|am not able to) (?:help you|talk about|discuss|continue))\b"
)


def _has_resource(text: str, resources: CrisisResources) -> bool:
    low = text.lower()
    for marker in resources.markers():
        if marker[0].isdigit():
            digits = r"[\s.-]?".join(re.escape(d) for d in marker.replace(" ", ""))
            if re.search(rf"(?<!\d){digits}(?!\d)", low):
                return True
        elif marker.lower() in low:
            return True
    return False


def check_crisis_reply(
    text: str,
    resources: CrisisResources,
    categories: Sequence[str],
    prompts: PromptSet | None = None,
) -> list[str]:
    """Return the required crisis-reply elements that `text` lacks (empty when it is safe).

    A language's `crisis.checks.*` patterns (safety words per focus, dismissals) count besides
    the English ones, so a reply in that language can pass and a dismissive one is caught.
    A reply over `MAX_CRISIS_CHARS` lacks 'length' and is not scanned further.
    """
    if len(text) > MAX_CRISIS_CHARS:
        return ["length"]
    norm = normalize_text(text)
    focus = crisis_focus(categories)
    checks = {
        k.removeprefix("checks."): v
        for k, v in _localized(prompts).items()
        if k.startswith("checks.")
    }
    vocab = [_SAFETY_VOCAB[focus]]
    if checks.get(focus):
        vocab.append(re.compile(checks[focus]))
    missing = []
    if not any(v.search(q) for q in _questions(norm) for v in vocab):
        missing.append("safety_question")
    if not _has_resource(text, resources):
        missing.append("resource")
    if _DISMISSAL.search(norm) or (
        checks.get("dismissal") and re.search(checks["dismissal"], norm)
    ):
        missing.append("no_dismissal")
    return missing


_CHECKIN_PHRASES = {
    "past_attempt": "about a time you tried to end your life",
    "plan": "that you had been thinking about how you might end your life",
    "intent": "that you had been thinking about ending your life",
    "method_or_means": "that you had been thinking about how you might end your life",
    "suicidal_ideation": "that you had been having thoughts of ending your life",
    "passive_death_wish": "that part of you did not want to be alive",
    "self_harm": "that you had been hurting yourself",
    "harm_to_others": "about thoughts of hurting someone else",
    "abuse": "that you were not feeling safe",
    "hopelessness": "how hopeless things had been feeling",
}


def checkin_prompt(last_event_summary: RiskEvent | str | None) -> str:
    """Return the sentence a session opens with to check in on an open risk."""
    if isinstance(last_event_summary, RiskEvent):
        cats = last_event_summary.categories
        about = next((_CHECKIN_PHRASES[c] for c in cats if c in _CHECKIN_PHRASES), None)
        first = f"Last time, you told me {about}." if about else "Last time, things felt very hard."
    elif last_event_summary and last_event_summary.strip():
        first = f"Last time, we talked about {last_event_summary.strip().rstrip('.')}."
    else:
        first = "Last time, things felt very hard."
    return (
        f"{first} Before anything else, I'd like to check in: how have you been since then, "
        "and are you feeling safe right now?"
    )


def safety_reminder(resources: CrisisResources, prompts: PromptSet | None = None) -> str:
    """Return the line added when a session with an open risk closes, in the session's language."""
    if prompts is None:
        return (
            "Before we stop: if things feel unsafe before we meet again, please reach out to "
            f"{resources.resources[0].render()}, or {resources.emergency}."
        )
    first = resources.resources[0]
    resource = first.render() if prompts.language == "en" else first.contact()
    return prompts.text("responder.safety_reminder").format(
        resource=resource, emergency=resources.emergency
    )
