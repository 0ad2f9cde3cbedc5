"""Phrase banks for the scripted patient: what each attitude sounds like, in each speaking style."""

from __future__ import annotations

import random
import re

from theramind.simulation.profiles import SimProfile

OPENERS_FIRST = (
    "I guess I'm here because {concern}.",
    "Honestly, {concern}, and all the {symptom} is wearing me down.",
    "Where do I start, {concern}.",
    "It's been hard lately, {concern}.",
)
OPENERS_BETTER = (
    "A bit better since last time, I've had less trouble with {symptom}.",
    "Honestly things have been a little lighter this week.",
    "Better than before, I think, though {concern}.",
)
OPENERS_SAME = (
    "Pretty much the same, {concern}.",
    "Not much has changed, I'm still dealing with {symptom}.",
    "About the same, I suppose, {concern}.",
)
OPENERS_WORSE = (
    "Worse, to be honest, I've had so much trouble with {symptom}.",
    "Not great, {concern}, and it's been getting harder.",
)
KIND_LINES: dict[str, tuple[str, ...]] = {
    "expressing_emotion": (
        "It hurts more than I let on, especially with {symptom} on top of it.",
        "I feel so worn out by all of it, and {concern}.",
        "Honestly I'm scared it won't get better.",
        "I get this heavy feeling whenever I think about it.",
    ),
    "introspection": (
        "When I think about it, I struggle with {symptom} most when I'm alone with my thoughts.",
        "I keep asking myself why I can't just handle this.",
        "I notice I go quiet when {concern}.",
        "Maybe it started earlier than I thought.",
    ),
    "insight": (
        "Maybe I've been expecting way too much of myself.",
        "I think I see a pattern, it always kicks off when I feel judged.",
        "I guess all the {symptom} is my way of avoiding the real problem.",
    ),
    "acceptance": (
        "Yeah, that makes sense, I don't have to fix it all at once.",
        "Okay, I can accept that it's hard right now.",
        "I think you're right that I'm allowed to feel this way.",
    ),
    "action": (
        "I could try writing down when the {symptom} kicks in.",
        "Maybe this week I'll talk to someone about it instead of hiding.",
        "I could take a short walk when it gets bad, that's doable.",
    ),
    "denial": (
        "It's not really that bad, I'm just tired.",
        "I don't think it's a big deal, honestly, everyone has stuff.",
        "I'm fine most days, it's not like I need fixing.",
    ),
    "blaming_others": (
        "If people around me would just back off, I'd be fine.",
        "It's not my fault, nobody ever helps me with anything.",
        "They keep making it worse and then act like it's all on me.",
    ),
    "withdrawal": (
        "I don't know. I don't really want to get into it.",
        "Can we not talk about that right now?",
        "I'd rather not say much today.",
    ),
    "confusion": (
        "I'm not sure what you mean, it's all a bit of a blur.",
        "I don't know what I'm supposed to feel anymore.",
        "Sorry, I lost track, what were we talking about?",
    ),
    "resistance": (
        "Whatever, I've already tried that and it doesn't work.",
        "That won't work for me, you don't understand my situation.",
        "I don't see what the point of talking about it is.",
    ),
}
DISCLOSURE_LINES = (
    "There's something I haven't told you: {fact}",
    "Actually, I should say this, {fact}",
    "I haven't said this out loud before, but {fact}",
)
CLOSINGS = (
    "I think that's all for today, bye.",
    "I have to go now, so bye for now.",
    "Let's stop here for today, see you next week, bye.",
    "Okay, I'm done for today, goodbye.",
)
"""One sentence each, with words the counselor's end-of-session detection knows."""
STYLE_PREFIX: dict[str, tuple[str, ...]] = {
    "upset": ("Ugh, ", "Honestly? ", "Look, "),
    "pleasing": ("You're right, ", "That's a good point, ", "Sorry, "),
}
STYLE_SUFFIX: dict[str, tuple[str, ...]] = {
    "upset": ("It's just so unfair!", "I'm so sick of it!"),
    "reserved": ("I guess.", "Maybe."),
    "pleasing": ("Thank you for listening.", "I hope that's okay."),
}
VERBOSE_EXTRAS = (
    "It reminds me of when all the {symptom} started, and I keep going over it in my head.",
    "And then there's the fact that {concern}, which I think about every night.",
    "I could talk about it for hours, honestly, there are so many little pieces to it.",
    "My friend says I overthink it, but I deal with {symptom} all the time.",
)
GENERIC_TANGENTS = (
    "my neighbour's dog barked all night again",
    "the bus was late three times this week",
    "I started watching a cooking show",
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != "I " and text[:2] != "I'" else text


def _slots(profile: SimProfile, rng: random.Random) -> dict[str, str]:
    concerns = profile.concerns or [profile.current_problems]
    return {
        "concern": _lower_first(rng.choice(concerns).rstrip(".")),
        "symptom": rng.choice(profile.symptoms).lower().rstrip("."),
    }


def limit(text: str, max_words: int, max_sentences: int = 2) -> str:
    """Keep at most `max_sentences` sentences and `max_words` words."""
    sentences = _SENTENCE.split(text.strip())[:max_sentences]
    words = " ".join(sentences).split()
    if len(words) <= max_words:
        return " ".join(words)
    return " ".join(words[:max_words]).rstrip(",;") + "."


def opener(profile: SimProfile, session_no: int, trend: float, rng: random.Random) -> str:
    """Say how things are at the start of a session (`trend` > 0: feeling better)."""
    bank: tuple[str, ...]
    if session_no == 1:
        bank = OPENERS_FIRST
    elif trend > 1.0:
        bank = OPENERS_BETTER
    elif trend < -1.0:
        bank = OPENERS_WORSE
    else:
        bank = OPENERS_SAME
    return rng.choice(bank).format(**_slots(profile, rng))


def styled(core: str, profile: SimProfile, rng: random.Random, *, negative: bool) -> str:
    """Dress a core sentence in the profile's speaking style."""
    style = profile.style
    if style in STYLE_PREFIX and rng.random() < 0.6:
        prefix = rng.choice(STYLE_PREFIX[style])
        core = prefix + (core if prefix.rstrip()[-1] in ".?!" else _lower_first(core))
    extra = ""
    if style == "verbose":
        extra = rng.choice(VERBOSE_EXTRAS).format(**_slots(profile, rng))
    elif style == "tangent" and rng.random() < 0.5:
        topic = rng.choice(profile.tangents or list(GENERIC_TANGENTS))
        extra = f"Anyway, {_lower_first(topic.rstrip('.'))}."
    elif style == "reserved":
        core = _SENTENCE.split(core)[0]
        extra = rng.choice(STYLE_SUFFIX["reserved"]) if rng.random() < 0.5 else ""
    elif style in STYLE_SUFFIX and rng.random() < 0.4:
        extra = rng.choice(STYLE_SUFFIX[style])
    elif style == "plain" and not negative and rng.random() < 0.4:
        extra = f"Dealing with {_slots(profile, rng)['symptom']} is the worst part."
    return f"{core} {extra}".strip()


def utterance(
    profile: SimProfile,
    *,
    kind: str,
    round_no: int,
    session_no: int,
    trend: float,
    fact: str | None,
    closing: bool,
    negative: bool,
    rng: random.Random,
    max_words: int,
) -> str:
    """Compose one patient utterance: 1-2 colloquial sentences within `max_words` words."""
    if closing:
        thanks = (
            ""
            if negative
            else rng.choice(
                ("Thanks, that gave me something to think about. ", "Okay. ", "Thank you. ")
            )
        )
        return limit(thanks + rng.choice(CLOSINGS), max_words)
    if fact is not None:
        core = rng.choice(DISCLOSURE_LINES).format(fact=_lower_first(fact.rstrip(".")) + ".")
        return limit(core, max_words)
    if round_no == 1:
        core = opener(profile, session_no, trend, rng)
    else:
        core = rng.choice(KIND_LINES[kind]).format(**_slots(profile, rng))
    return limit(styled(core, profile, rng, negative=negative), max_words)
