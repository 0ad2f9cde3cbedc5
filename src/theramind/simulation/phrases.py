"""Phrase banks for the scripted patient: what each attitude sounds like, in each speaking style."""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass, field

from theramind.locales import load_prompts
from theramind.simulation.profiles import SimProfile
from theramind.text import cut_units, has_cjk

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
_SENTENCE = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*")


@dataclass(frozen=True)
class PhraseBank:
    """One language's phrases for the scripted patient."""

    openers_first: tuple[str, ...] = OPENERS_FIRST
    openers_better: tuple[str, ...] = OPENERS_BETTER
    openers_same: tuple[str, ...] = OPENERS_SAME
    openers_worse: tuple[str, ...] = OPENERS_WORSE
    kinds: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(KIND_LINES))
    disclosures: tuple[str, ...] = DISCLOSURE_LINES
    closings: tuple[str, ...] = CLOSINGS
    thanks: tuple[str, ...] = (
        "Thanks, that gave me something to think about. ",
        "Okay. ",
        "Thank you. ",
    )
    style_prefix: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(STYLE_PREFIX))
    style_suffix: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(STYLE_SUFFIX))
    verbose_extras: tuple[str, ...] = VERBOSE_EXTRAS
    tangents: tuple[str, ...] = GENERIC_TANGENTS
    tangent: str = "Anyway, {topic}."
    plain_extra: str = "Dealing with {symptom} is the worst part."
    joiner: str = " "
    english: bool = True


ENGLISH = PhraseBank()


@functools.cache
def phrase_bank(language: str) -> PhraseBank:
    """Return a language's phrase bank (`phrases:` in its locale's simulation.yaml), else English.

    A list the language lacks is taken from English, with a warning in the log of the loader.
    """
    prompts = load_prompts(language)
    texts = prompts.group("phrases")
    if prompts.language == "en" or not texts:
        return ENGLISH

    def items(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v for k, v in texts.items() if k.rpartition(".")[0] == key) or default

    def table(key: str, default: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        names = {k.split(".")[1] for k in texts if k.startswith(key + ".")}
        return {n: items(f"{key}.{n}", default.get(n, ())) for n in names} or dict(default)

    return PhraseBank(
        openers_first=items("openers_first", OPENERS_FIRST),
        openers_better=items("openers_better", OPENERS_BETTER),
        openers_same=items("openers_same", OPENERS_SAME),
        openers_worse=items("openers_worse", OPENERS_WORSE),
        kinds={**KIND_LINES, **table("kinds", KIND_LINES)},
        disclosures=items("disclosures", DISCLOSURE_LINES),
        closings=items("closings", CLOSINGS),
        thanks=items("thanks", ENGLISH.thanks),
        style_prefix=table("style_prefix", STYLE_PREFIX),
        style_suffix=table("style_suffix", STYLE_SUFFIX),
        verbose_extras=items("verbose_extras", VERBOSE_EXTRAS),
        tangents=items("tangents", GENERIC_TANGENTS),
        tangent=texts.get("tangent", ENGLISH.tangent),
        plain_extra=texts.get("plain_extra", ENGLISH.plain_extra),
        joiner=texts.get("joiner", " "),
        english=False,
    )


def _bank(profile: SimProfile) -> PhraseBank:
    return phrase_bank(getattr(profile, "language", "en") or "en")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != "I " and text[:2] != "I'" else text


def _slots(profile: SimProfile, rng: random.Random) -> dict[str, str]:
    concerns = profile.concerns or [profile.current_problems]
    concern = rng.choice(concerns).rstrip(".。")
    symptom = rng.choice(profile.symptoms).rstrip(".。")
    if not _bank(profile).english:
        return {"concern": concern, "symptom": symptom}
    return {"concern": _lower_first(concern), "symptom": symptom.lower()}


def limit(text: str, max_words: int, max_sentences: int = 2) -> str:
    """Keep at most `max_sentences` sentences and `max_words` words (CJK: two characters a word)."""
    sentences = [p for p in _SENTENCE.split(text.strip()) if p][:max_sentences]
    if has_cjk(text):
        kept, cut = cut_units("".join(s.strip() for s in sentences), max_words)
        return kept.rstrip("，；,;") + "。" if cut else kept
    words = " ".join(sentences).split()
    if len(words) <= max_words:
        return " ".join(words)
    return " ".join(words[:max_words]).rstrip(",;") + "."


def opener(profile: SimProfile, session_no: int, trend: float, rng: random.Random) -> str:
    """Say how things are at the start of a session (`trend` > 0: feeling better)."""
    phrases = _bank(profile)
    bank: tuple[str, ...]
    if session_no == 1:
        bank = phrases.openers_first
    elif trend > 1.0:
        bank = phrases.openers_better
    elif trend < -1.0:
        bank = phrases.openers_worse
    else:
        bank = phrases.openers_same
    return rng.choice(bank).format(**_slots(profile, rng))


def styled(core: str, profile: SimProfile, rng: random.Random, *, negative: bool) -> str:
    """Dress a core sentence in the profile's speaking style."""
    style = profile.style
    phrases = _bank(profile)
    lower = _lower_first if phrases.english else str
    if style in phrases.style_prefix and rng.random() < 0.6:
        prefix = rng.choice(phrases.style_prefix[style])
        core = prefix + (core if prefix.rstrip()[-1] in ".?!" else lower(core))
    extra = ""
    if style == "verbose":
        extra = rng.choice(phrases.verbose_extras).format(**_slots(profile, rng))
    elif style == "tangent" and rng.random() < 0.5:
        topic = rng.choice(profile.tangents or list(phrases.tangents))
        extra = phrases.tangent.format(topic=lower(topic.rstrip(".。")))
    elif style == "reserved":
        core = _SENTENCE.split(core)[0]
        suffixes = phrases.style_suffix.get("reserved", ())
        extra = rng.choice(suffixes) if suffixes and rng.random() < 0.5 else ""
    elif style in phrases.style_suffix and rng.random() < 0.4:
        extra = rng.choice(phrases.style_suffix[style])
    elif style == "plain" and not negative and rng.random() < 0.4:
        extra = phrases.plain_extra.format(symptom=_slots(profile, rng)["symptom"])
    return f"{core}{phrases.joiner}{extra}".strip()


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
    phrases = _bank(profile)
    if closing:
        thanks = "" if negative else rng.choice(phrases.thanks)
        return limit(thanks + rng.choice(phrases.closings), max_words)
    if fact is not None:
        body = fact.rstrip(".") + "." if phrases.english else fact
        core = rng.choice(phrases.disclosures).format(
            fact=_lower_first(body) if phrases.english else body
        )
        return limit(core, max_words)
    if round_no == 1:
        core = opener(profile, session_no, trend, rng)
    else:
        core = rng.choice(phrases.kinds[kind]).format(**_slots(profile, rng))
    return limit(styled(core, profile, rng, negative=negative), max_words)
