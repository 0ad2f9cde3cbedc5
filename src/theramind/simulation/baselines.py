"""Baseline counselors: a plain single-prompt model, and a reference-style full-transcript pipeline.

The reference style re-sends the whole history of every session to a chain of sequential
prompts each turn, as the published reference implementation does, so its cost per turn grows
with the length of treatment.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from theramind.agents.heuristics import wants_to_end
from theramind.agents.responder import limit_words
from theramind.config import Taxonomy
from theramind.llm import ModelRouter
from theramind.llm.types import Message
from theramind.records import CallUsage, PatientProfile
from theramind.simulation.counselors import Counselor, CounselorTurn, Exchange, PastSession

ROLE = "counselor"

PLAIN_SYSTEM = """\
You are a warm, professional counselor talking with {name}, {age}. What brought them here:
{problem}
Reply naturally in at most {max_words} words. No diagnosis, no medication advice.{closing}"""
PLAIN_CLOSING = "\nThe client wants to end the session now: close it warmly and briefly."

REF_SYSTEM = """\
You are part of a psychological counseling system. {task}
<history>
{history}
</history>"""
REF_USER = "The client just said:\n{text}"
REF_TASKS: dict[str, str] = {
    "summary": "Summarise the whole counseling history so far, every session, in a few sentences.",
    "emotion": "Name the client's primary emotion now, one of: {emotions}. Answer with one word.",
    "attitude": "Is the client's attitude now positive or negative? Answer with one word.",
    "resistance": "Is the client resisting or changing topic? Answer yes or no.",
    "end_intent": "Does the client clearly want to end this session now? Answer yes or no.",
    "therapy": "Which therapy should this session use? Answer with one id from: {therapies}.",
    "phase": "Which treatment phase is this? Answer with one id from: {phases}.",
    "strategy": "Choose one response strategy for a {attitude} attitude from: {strategies}. "
    "Answer with the id.",
    "reply": "Write the counselor's next reply in at most {max_words} words. Therapy: {therapy}. "
    "Phase: {phase}. Strategy: {strategy}. Client emotion: {emotion}. Summary: {summary}{closing}",
    "close": "The session has ended. Did the therapy help? Choose the therapy for the next "
    "session, one id from: {therapies}. Answer with the id and one sentence.",
}
REF_SEQUENCE = (
    "summary",
    "emotion",
    "attitude",
    "resistance",
    "end_intent",
    "therapy",
    "phase",
    "attitude",
    "strategy",
    "emotion",
    "reply",
)
"""Eleven calls in order; the repeated attitude and emotion checks mirror the reference."""


def pick(text: str, options: Sequence[str], default: str) -> str:
    """Return the first option (an id, or its spaced form) named in a model's free text."""
    low = text.lower()
    for option in options:
        if option.lower() in low or option.replace("_", " ").lower() in low:
            return option
    return default


def _usage(agent: str, completion: Any) -> CallUsage:
    """Describe a call; an empty answer counts as a fallback (a default stands in for it)."""
    return CallUsage(
        role=ROLE,
        agent=agent,
        prompt_tokens=completion.usage.prompt_tokens,
        completion_tokens=completion.usage.completion_tokens,
        latency_s=round(completion.usage.latency_s, 4),
        fallback=not completion.text.strip(),
    )


def _opening(profile: PatientProfile | None, session_no: int) -> str:
    name = (profile.pseudonym if profile else "") or "there"
    if session_no == 1:
        return f"Hello {name}, thank you for coming. What would you like to talk about today?"
    return f"Welcome back, {name}. How have things been since we last met?"


class _TranscriptCounselor(Counselor):
    """Shared bookkeeping: the sessions so far, kept in memory and restored on resume."""

    def __init__(self, router: ModelRouter, *, max_words: int = 60) -> None:
        self.router = router
        self.max_words = max_words
        self.profile: PatientProfile | None = None
        self.past: list[PastSession] = []
        self.current: PastSession | None = None

    def open_session(self, patient_id: str, profile: PatientProfile) -> str:
        """Start the next session with a fixed greeting (no model call)."""
        self.profile = profile
        no = len(self.past) + 1
        opening = _opening(profile, no)
        self.current = PastSession(session_no=no, opening=opening)
        return opening

    def _now(self) -> PastSession:
        if self.current is None:
            raise RuntimeError("open_session must be called first")
        return self.current

    def close_session(self) -> dict[str, Any] | None:
        """File the session away."""
        self.past.append(self._now())
        self.current = None
        return None

    def rewind(
        self, patient_id: str, profile: PatientProfile, history: Sequence[PastSession]
    ) -> None:
        """Restore the completed sessions."""
        self.profile = profile
        self.past = [s.model_copy(deep=True) for s in history]
        self.current = None

    def model_ids(self) -> dict[str, str]:
        """Return the counselor role's model."""
        return {"counselor": self.router.model_id(ROLE)}

    def close(self) -> None:
        """Close the model backends."""
        self.router.close()


class PlainCounselor(_TranscriptCounselor):
    """One model call per turn: a short system prompt and this session's transcript."""

    kind = "plain"

    def respond(self, text: str) -> CounselorTurn:
        """Answer with one completion."""
        started = time.perf_counter()
        session = self._now()
        closing = wants_to_end(text)
        profile = self.profile or PatientProfile(patient_id="anonymous")
        system = PLAIN_SYSTEM.format(
            name=profile.pseudonym or "the client",
            age=profile.age or "age unknown",
            problem=profile.presenting_problem or "(not stated)",
            max_words=self.max_words,
            closing=PLAIN_CLOSING if closing else "",
        )
        messages: list[Message] = [{"role": "system", "content": system}]
        messages.append({"role": "assistant", "content": session.opening})
        for ex in session.exchanges:
            messages.append({"role": "user", "content": ex.patient})
            messages.append({"role": "assistant", "content": ex.counselor})
        messages.append({"role": "user", "content": text})
        completion = self.router.complete(ROLE, messages)
        reply = limit_words(completion.text.strip(), self.max_words) or "I'm listening."
        session.exchanges.append(Exchange(patient=text, counselor=reply))
        return CounselorTurn(
            reply=reply,
            closing=closing,
            calls=[_usage("plain.reply", completion)],
            latency_s=round(time.perf_counter() - started, 4),
        )


class ReferenceCounselor(_TranscriptCounselor):
    """The reference pipeline: eleven sequential prompts a turn, each with the full history."""

    kind = "reference"

    def __init__(
        self,
        router: ModelRouter,
        taxonomy: Taxonomy,
        *,
        max_words: int = 60,
        repeat_checks: bool = True,
    ) -> None:
        super().__init__(router, max_words=max_words)
        self.taxonomy = taxonomy
        self.sequence = REF_SEQUENCE if repeat_checks else tuple(dict.fromkeys(REF_SEQUENCE))
        self.therapy = ""

    def _history(self) -> str:
        parts = []
        for s in [*self.past, *([self.current] if self.current else [])]:
            lines = [f"Session {s.session_no}:", f"Counselor: {s.opening}"]
            for ex in s.exchanges:
                lines += [f"Client: {ex.patient}", f"Counselor: {ex.counselor}"]
            parts.append("\n".join(lines))
        return "\n\n".join(parts)

    def _ask(self, task: str, text: str, calls: list[CallUsage], **slots: str) -> str:
        tax = self.taxonomy
        fields = {
            "emotions": ", ".join(tax.emotion_ids),
            "therapies": ", ".join(tax.therapy_ids),
            "phases": ", ".join(tax.phase_ids),
            "max_words": str(self.max_words),
            **slots,
        }
        messages: list[Message] = [
            {
                "role": "system",
                "content": REF_SYSTEM.format(
                    task=REF_TASKS[task].format(**fields), history=self._history()
                ),
            },
            {"role": "user", "content": REF_USER.format(text=text)},
        ]
        completion = self.router.complete(ROLE, messages)
        calls.append(_usage(f"reference.{task}", completion))
        return completion.text.strip()

    def respond(self, text: str) -> CounselorTurn:
        """Run the sequential pipeline and answer."""
        started = time.perf_counter()
        tax = self.taxonomy
        calls: list[CallUsage] = []
        got: dict[str, str] = {}
        for task in self.sequence:
            if task == "strategy":
                attitude = pick(got.get("attitude", ""), ("negative", "positive"), "positive")
                allowed = [s.id for s in tax.strategies if s.attitude == attitude]
                got[task] = pick(
                    self._ask(task, text, calls, attitude=attitude, strategies=", ".join(allowed)),
                    allowed,
                    allowed[0],
                )
            elif task == "reply":
                closing = got.get("end_intent", "").lower().startswith("yes")
                got["reply"] = self._ask(
                    task,
                    text,
                    calls,
                    therapy=got.get("therapy", ""),
                    phase=got.get("phase", ""),
                    strategy=got.get("strategy", ""),
                    emotion=got.get("emotion", ""),
                    summary=got.get("summary", "")[:600],
                    closing=" The client wants to end: close warmly." if closing else "",
                )
            else:
                got[task] = self._ask(task, text, calls)
        therapy = pick(got.get("therapy", ""), tax.therapy_ids, self.therapy or tax.therapy_ids[0])
        self.therapy = therapy
        closing = got.get("end_intent", "").lower().startswith("yes")
        reply = limit_words(got["reply"], self.max_words) or "I'm listening."
        self._now().exchanges.append(Exchange(patient=text, counselor=reply))
        self._now().therapies = [therapy]
        return CounselorTurn(
            reply=reply,
            closing=closing,
            strategy=got.get("strategy"),
            therapies=[therapy],
            phase=pick(got.get("phase", ""), tax.phase_ids, tax.phase_ids[0]),
            calls=calls,
            latency_s=round(time.perf_counter() - started, 4),
        )

    def close_session(self) -> dict[str, Any] | None:
        """Ask, with the whole history, which therapy the next session should use."""
        calls: list[CallUsage] = []
        answer = self._ask("close", "(session ended)", calls)
        self.therapy = pick(answer, self.taxonomy.therapy_ids, self.therapy)
        self._now().close = {"therapy": self.therapy, "answer": answer[:300]}
        super().close_session()
        return {
            "therapy": self.therapy,
            "answer": answer[:300],
            "calls": [c.model_dump(mode="json") for c in calls],
        }

    def rewind(
        self, patient_id: str, profile: PatientProfile, history: Sequence[PastSession]
    ) -> None:
        """Restore the completed sessions and the therapy last chosen."""
        super().rewind(patient_id, profile, history)
        last = history[-1] if history else None
        self.therapy = str((last.close or {}).get("therapy", "")) if last else ""
