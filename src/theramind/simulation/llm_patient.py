"""A simulated patient played by a model (role "patient"), steered by the shared dynamics."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from theramind.agents.heuristics import wants_to_end
from theramind.errors import ModelError
from theramind.llm import ModelRouter
from theramind.llm.types import Message
from theramind.locales import PromptSet, escape_text, load_prompts
from theramind.records import CallUsage
from theramind.simulation.latent import (
    Questionnaire,
    QuestionnaireAnswer,
    SessionInfo,
    mood_words,
    self_report,
)
from theramind.simulation.patient import Cue, PatientSettings, SimulatedPatient
from theramind.simulation.phrases import limit, phrase_bank, utterance
from theramind.simulation.profiles import SimProfile

log = logging.getLogger(__name__)
ROLE = "patient"

_PREFIX = re.compile(
    r"^\s*(?:\*\*)?(?:patient|client|me|来访者|[A-Z][a-z]+|\w{1,4})\s*(?:\*\*)?[:：]\s*"
)


def patient_prompts(profile: SimProfile) -> PromptSet:
    """Return the prompts in the language the simulated patient speaks."""
    return load_prompts(profile.language)


def degenerate(text: str) -> bool:
    """Whether a line mostly repeats itself (small models loop: "I'm here, I'm here, ...")."""
    words = re.findall(r"[a-z']+", text.lower())
    return len(words) >= 10 and len(set(words)) / len(words) < 0.5


def clean_reply(text: str, name: str, max_words: int) -> str:
    """Strip role labels, quotes and extra sentences from a model's patient line."""
    text = text.strip().strip('"').strip()
    match = _PREFIX.match(text)
    roles = {"patient", "client", "me", "来访者", name.lower()}
    if match and match.group(0).strip(" *:：").lower() in roles:
        text = text[match.end() :]
    text = text.split("\nCounselor")[0].split("\n咨询师")[0].split("\n\n")[0].strip().strip('"')
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
        prompts = patient_prompts(profile)
        texts = prompts.group("simulation")
        system = prompts.render(
            "simulation.patient_system",
            name=profile.pseudonym,
            age=profile.age,
            mental=profile.mental_health_history,
            physical=profile.physical_health_history,
            problems=profile.current_problems,
            symptoms="; ".join(profile.symptoms),
            session_no=self.session_no,
            guidance=profile.guidance_for(self.session_no),
            mood=mood_words(latent, self.baseline(), prompts.group("simulation.mood")),
            style=texts[f"styles.{profile.style}"],
        )
        messages: list[Message] = [{"role": "system", "content": system}]
        for counselor, patient in self.history:
            messages.append({"role": "user", "content": escape_text(counselor)})
            messages.append({"role": "assistant", "content": escape_text(patient)})
        messages.append({"role": "user", "content": user})
        return messages

    def _say(self, cue: Cue) -> tuple[str, CallUsage | None]:
        profile, _ = self._ready()
        prompts = patient_prompts(profile)
        texts = prompts.group("simulation")
        user = prompts.render(
            "simulation.turn_user",
            counselor=cue.counselor_text,
            name=profile.pseudonym,
            attitude=texts[f"attitudes.{cue.kind}"],
            fact=texts["fact"].replace("{fact}", escape_text(cue.fact.text)) if cue.fact else "",
            closing=texts["closing"] if cue.closing else "",
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
        if not text or degenerate(text) or (wants_to_end(text) and not cue.closing):
            text = utterance(
                profile,
                kind=cue.kind,
                round_no=self.round,
                session_no=self.session_no,
                trend=0.0,
                fact=cue.fact.text if cue.fact else None,
                closing=cue.closing,
                negative=cue.attitude == "negative",
                rng=self.rng,
                max_words=self.settings.max_words,
            )
            usage = usage.model_copy(update={"fallback": True})
        if cue.closing and not wants_to_end(text):
            closings = phrase_bank(profile.language).closings
            text = limit(f"{text} {self.rng.choice(closings)}", self.settings.max_words + 12, 3)
        return text, usage

    def _questionnaire(self, info: SessionInfo) -> Questionnaire:
        profile, latent = self._ready()
        fallback = self_report(latent, profile.style, self.rng)
        if self.settings.questionnaire == "latent":
            return fallback
        prompts = patient_prompts(profile)
        messages: list[Message] = [
            {
                "role": "system",
                "content": prompts.render(
                    "simulation.questionnaire_system",
                    name=profile.pseudonym,
                    session_no=info.session_no,
                    mood=mood_words(latent, self.baseline(), prompts.group("simulation.mood")),
                    phq9=latent.phq9,
                    gad7=latent.gad7,
                    alliance=1 + 4 * latent.alliance,
                    style=prompts.text(f"simulation.styles.{profile.style}"),
                ),
            },
            {"role": "user", "content": prompts.text("simulation.questionnaire_user")},
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
