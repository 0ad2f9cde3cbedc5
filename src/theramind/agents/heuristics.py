"""Deterministic estimates used when a model is unavailable: the documented safe fallbacks."""

from __future__ import annotations

import re

from theramind.records import Perception, RiskScreen

_EMOTION_CUES: dict[str, tuple[str, ...]] = {
    "sadness": ("sad", "down", "depress", "hopeless", "lonely", "cry", "empty", "miss", "grief"),
    "fear": ("anxious", "worried", "scared", "afraid", "panic", "nervous", "fear", "dread"),
    "anger": ("angry", "furious", "annoyed", "frustrat", "hate", "unfair", "mad at"),
    "disgust": ("ashamed", "disgust", "gross", "sick of myself", "shame"),
    "joy": ("happy", "glad", "better", "relieved", "great", "proud", "good day"),
    "surprise": ("surprised", "shocked", "didn't expect", "out of nowhere"),
    "trust": ("thank", "helpful", "trust", "makes sense", "i feel heard"),
    "anticipation": ("hope", "looking forward", "plan to", "going to try", "next week"),
}
_END_CUES = re.compile(
    r"\b(that'?s all for today|i (?:have|need|got) to go|i should go|let'?s (?:stop|end|wrap)|"
    r"see you next (?:time|week)|goodbye|bye for now|talk (?:to you )?next time|"
    r"end (?:the|our|this) session|i'?m done for today|thanks for today|talk soon|"
    r"(?<!said )(?<!say )bye(?!\s+to\b))\b"
    # Chinese: goodbye, that's it for today, see you next time, I have to go
    r"|再见|拜拜|今天(?:就|先)?(?:聊|谈)?到这(?:里|儿)?(?:吧|了)?|下次(?:再)?(?:见|聊)|我(?:得|要|该)走了",
    re.IGNORECASE,
)
_RESIST_CUES = re.compile(
    r"\b(that won'?t work|you don'?t understand|what'?s the point|i don'?t want to talk|"
    r"stop telling me|already tried|whatever|leave it|not helpful)\b",
    re.IGNORECASE,
)
_NEGATIVE_CUES = re.compile(
    r"\b(no|not|never|can'?t|won'?t|don'?t|blame|their fault|nothing helps|i don'?t know)\b",
    re.IGNORECASE,
)


def wants_to_end(text: str) -> bool:
    """Return whether a message clearly closes the session."""
    return bool(_END_CUES.search(text))


def estimate_perception(text: str, screen: RiskScreen, emotions: list[str]) -> Perception:
    """Estimate a perception from keywords; used only when the diagnostician fails."""
    low = text.lower()
    scores = {e: sum(low.count(c) for c in cues) for e, cues in _EMOTION_CUES.items()}
    best = max(scores, key=lambda e: scores[e])
    emotion = (
        best
        if scores[best] > 0 and best in emotions
        else ("sadness" if "sadness" in emotions else emotions[0])
    )
    resistance = bool(_RESIST_CUES.search(text))
    negatives = len(_NEGATIVE_CUES.findall(text))
    return Perception(
        emotion=emotion,
        intensity=0.5 if scores[best] <= 1 else 0.7,
        attitude="negative" if resistance or negatives >= 2 else "positive",
        resistance=resistance,
        topic_deviation=False,
        wants_to_end=wants_to_end(text),
        risk_level=screen.level,
        risk_evidence="; ".join(screen.evidence)[:300],
    )
