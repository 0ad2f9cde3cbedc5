"""A controllable scripted counselor model for graph tests (no network, deterministic)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from theramind.llm import Request, ScriptedBackend


def last_user(request: Request) -> str:
    """Return the patient's latest words: the `<message>` block of the last user message."""
    for message in reversed(request.messages):
        if message["role"] == "user":
            content = message["content"]
            _, found, rest = content.rpartition("<message>\n")
            return rest.rsplit("\n</message>", 1)[0] if found else content
    return ""


def enum_of(request: Request, field_name: str) -> list[Any]:
    """Return the enum a request's schema allows for a field (arrays: their items)."""
    schema = request.json_schema or {}
    prop = schema.get("properties", {}).get(field_name, {})
    if prop.get("type") == "array":
        prop = prop.get("items", {})
    if "const" in prop:
        return [prop["const"]]
    return list(prop.get("enum", []))


@dataclass
class Counselor:
    """Answers each agent's schema from simple cues in the patient's message.

    Cues: 'bye' → wants to end; 'no'/'never'/'whatever' → negative attitude and resistance;
    'hopeless' → sadness at 0.9. `verdict` sets the efficacy evaluation; `pick` the index of
    the allowed enum value the strategist and decision take.
    """

    verdict: str = "effective"
    pick: int = 0
    risk: str = "none"
    replies: list[str] = field(default_factory=list)

    def __call__(self, request: Request) -> Any:
        text = last_user(request).lower()
        name = request.schema_name
        if name == "Perception":
            negative = any(w in text for w in (" no ", "never", "whatever", "not "))
            return {
                "emotion": "sadness" if "hopeless" in text or "sad" in text else "fear",
                "intensity": 0.9 if "hopeless" in text else 0.4,
                "attitude": "negative" if negative else "positive",
                "resistance": "whatever" in text,
                "topic_deviation": False,
                "wants_to_end": "bye" in text,
                "risk_level": self.risk,
                "risk_evidence": "",
            }
        if name == "StrategyChoice":
            allowed = enum_of(request, "strategy")
            return {"strategy": allowed[self.pick % len(allowed)], "rationale": "fits", "focus": ""}
        if name in ("EfficacyReport", "EfficacyVerdict"):
            return {"verdict": self.verdict, "reason": f"scripted: {self.verdict}"}
        if name == "TherapyDecision":
            actions = enum_of(request, "action")
            therapies = enum_of(request, "therapies")
            phases = enum_of(request, "phase")
            return {
                "action": actions[self.pick % len(actions)],
                "therapies": [therapies[self.pick % len(therapies)]],
                "phase": phases[-1],
                "reason": "scripted decision",
                "evidence": ["signals"],
            }
        if name == "Formulation":
            return {"presenting_problems": ["low mood"], "severity": "moderate"}
        if name == "SessionSummary":
            return {
                "summary": "We talked about work stress.",
                "salient": [{"kind": "goal", "text": "sleep before midnight"}],
                "next_focus": "sleep routine",
            }
        if request.json_schema is None and self.replies:
            return self.replies.pop(0)
        if request.json_schema is None:
            return "It sounds like this week weighed on you. What felt hardest?"
        return None


def scripted_backend(counselor: Counselor | None = None) -> ScriptedBackend:
    """Return a scripted backend driven by a `Counselor`."""
    return ScriptedBackend(handler=counselor or Counselor())
