"""A simulated patient played by a model (role "patient"), steered by the shared dynamics."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from theramind.agents.heuristics import wants_to_end
from theramind.errors import ModelError
from theramind.llm import ModelRouter
from theramind.llm.types import Message
from theramind.records import Attitude, CallUsage
from theramind.simulation.latent import (
    Questionnaire,
    QuestionnaireAnswer,
    SessionInfo,
    mood_words,
    self_report,
)
from theramind.simulation.patient import PatientSettings, SimulatedPatient
from theramind.simulation.phrases import CLOSINGS, limit, utterance
from theramind.simulation.profiles import Disclosure, SimProfile

log = logging.getLogger(__name__)
ROLE = "patient"

PATIENT_SYSTEM = """\
You are role-playing {name}, {age}, a client in counseling. Stay in character. Never say you are
an AI, never act as the counselor, never write stage directions.
<background>
Mental health history: {mental}
Physical health: {physical}
What troubles you: {problems}
Symptoms: {symptoms}
</background>
<today>
This is session {session_no}. Your aim today: {guidance}
{mood}
</today>
Speaking style: {style}"""

TURN_USER = """\
<counselor>
{counselor}
</counselor>
Answer as {name}. {attitude}{fact}{closing}
Write 1 or 2 short, colloquial sentences, fewer than {max_words} words."""

QUESTIONNAIRE_SYSTEM = """\
You are {name} filling in a short questionnaire after counseling session {session_no}.
Answer honestly and in character. {mood}
Your symptoms right now are about {phq9:.0f} of 27 for low mood (PHQ-9) and {gad7:.0f} of 21 for
worry (GAD-7); you trust the counselor about {alliance:.0f} of 5. Speaking style: {style}"""

STYLES: dict[str, str] = {
    "plain": "plain and direct; you say what happened without much decoration.",
    "upset": "upset and irritable; short fuse, exclamations, sometimes blaming others.",
    "verbose": "talkative; you add detail and go round in circles.",
    "reserved": "guarded; very short answers, you hold back.",
    "tangent": "you drift to unrelated topics now and then.",
    "pleasing": "eager to please; you agree quickly and play problems down.",
}
ATTITUDES: dict[str, str] = {
    "expressing_emotion": "Say how you feel right now.",
    "introspection": "Reflect on why you react the way you do.",
    "insight": "Notice something new about your pattern.",
    "acceptance": "Accept what the counselor said, in your own words.",
    "action": "Mention a small concrete thing you could try.",
    "denial": "Play the problem down; deny it is serious.",
    "blaming_others": "Blame other people or circumstances.",
    "withdrawal": "Pull back; you do not want to talk about it.",
    "confusion": "Sound confused about what the counselor means.",
    "resistance": "Push back on the counselor's suggestion; it will not work for you.",
}
_PREFIX = re.compile(r"^\s*(?:\*\*)?(?:patient|client|me|[A-Z][a-z]+)\s*(?:\*\*)?:\s*")


def degenerate(text: str) -> bool:
    """Whether a line mostly repeats itself (small models loop: "I'm here, I'm here, ...")."""
    words = re.findall(r"[a-z']+", text.lower())
    return len(words) >= 10 and len(set(words)) / len(words) < 0.5


def clean_reply(text: str, name: str, max_words: int) -> str:
    """Strip role labels, quotes and extra sentences from a model's patient line."""
    text = text.strip().strip('"').strip()
    match = _PREFIX.match(text)
    if match and match.group(0).strip(" *:").lower() in {"patient", "client", "me", name.lower()}:
        text = text[match.end() :]
    text = text.split("\nCounselor")[0].split("\n\n")[0].strip().strip('"')
    return limit(text, max_words) if text else ""


class LLMPatient(SimulatedPatient):
    """A patient whose words come from the role-"patient" model; the behaviour stays scripted."""

    def __init__(
        self,
        router: ModelRouter,
        settings: PatientSettings | None = None,
        *,
        strategy_attitudes: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(settings, strategy_attitudes=strategy_attitudes)
        self.router = router

    def close(self) -> None:
        """Close the patient model's backends."""
        self.router.close()

    def _messages(self, profile: SimProfile, user: str) -> list[Message]:
        _, latent = self._ready()
        system = PATIENT_SYSTEM.format(
            name=profile.pseudonym,
            age=profile.age,
            mental=profile.mental_health_history,
            physical=profile.physical_health_history,
            problems=profile.current_problems,
            symptoms="; ".join(profile.symptoms),
            session_no=self.session_no,
            guidance=profile.guidance_for(self.session_no),
            mood=mood_words(latent, self.baseline()),
            style=STYLES[profile.style],
        )
        messages: list[Message] = [{"role": "system", "content": system}]
        for counselor, patient in self.history:
            messages.append({"role": "user", "content": counselor})
            messages.append({"role": "assistant", "content": patient})
        messages.append({"role": "user", "content": user})
        return messages

    def _say(
        self,
        counselor_text: str,
        *,
        attitude: Attitude,
        kind: str,
        fact: Disclosure | None,
        closing: bool,
    ) -> tuple[str, CallUsage | None]:
        profile, _ = self._ready()
        user = TURN_USER.format(
            counselor=counselor_text,
            name=profile.pseudonym,
            attitude=ATTITUDES[kind],
            fact=f" Also tell the counselor, in your own words: {fact.text}" if fact else "",
            closing=" You want to end the session now: say goodbye." if closing else "",
            max_words=self.settings.max_words,
        )
        usage = CallUsage(role=ROLE, agent="patient.say")
        try:
            completion = self.router.complete(ROLE, self._messages(profile, user), max_tokens=120)
            text = clean_reply(completion.text, profile.pseudonym, self.settings.max_words)
            usage = usage.model_copy(
                update={
                    "prompt_tokens": completion.usage.prompt_tokens,
                    "completion_tokens": completion.usage.completion_tokens,
                    "latency_s": round(completion.usage.latency_s, 4),
                }
            )
        except ModelError as exc:
            log.warning("patient model failed, using a scripted line: %s", exc)
            text, usage = "", usage.model_copy(update={"fallback": True, "error": str(exc)[:300]})
        if not text or degenerate(text) or (wants_to_end(text) and not closing):
            text = utterance(
                profile,
                kind=kind,
                round_no=self.round,
                session_no=self.session_no,
                trend=0.0,
                fact=fact.text if fact else None,
                closing=closing,
                negative=attitude == "negative",
                rng=self.rng,
                max_words=self.settings.max_words,
            )
            usage = usage.model_copy(update={"fallback": True})
        if closing and not wants_to_end(text):
            text = limit(f"{text} {self.rng.choice(CLOSINGS)}", self.settings.max_words + 12, 3)
        return text, usage

    def _questionnaire(self, info: SessionInfo) -> Questionnaire:
        profile, latent = self._ready()
        fallback = self_report(latent, profile.style, self.rng)
        if self.settings.questionnaire == "latent":
            return fallback
        messages: list[Message] = [
            {
                "role": "system",
                "content": QUESTIONNAIRE_SYSTEM.format(
                    name=profile.pseudonym,
                    session_no=info.session_no,
                    mood=mood_words(latent, self.baseline()),
                    phq9=latent.phq9,
                    gad7=latent.gad7,
                    alliance=1 + 4 * latent.alliance,
                    style=STYLES[profile.style],
                ),
            },
            {"role": "user", "content": "Fill in the questionnaire about today's session."},
        ]
        try:
            result = self.router.structured(
                ROLE,
                messages,
                QuestionnaireAnswer,
                fallback=lambda: QuestionnaireAnswer.model_validate(
                    fallback.model_dump(exclude={"source"})
                ),
                max_tokens=200,
            )
        except ModelError as exc:
            log.warning("patient questionnaire failed, using the latent state: %s", exc)
            return fallback
        if result.fallback:
            return fallback
        return Questionnaire(**result.value.model_dump(), source="model")
