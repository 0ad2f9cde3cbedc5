"""Baseline counselors: a plain single-prompt model, and a model of the published reference design.

The reference model follows the published design's call pattern: eleven sequential prompts a
turn, four of them with the whole history of every session, so its cost per turn grows with
the length of treatment; two calls at each opening and none at close.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from theramind.agents.base import call_usage
from theramind.agents.heuristics import wants_to_end
from theramind.agents.responder import limit_words
from theramind.config import Taxonomy
from theramind.errors import SessionStateError
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
You are part of a psychological counseling system. {task}{context}"""
REF_CONTEXT = {
    "history": "\n<history>\n{text}\n</history>",
    "session": "\n<session>\n{text}\n</session>",
    "utterance": "",
}
REF_USER = "The client just said:\n{text}"
REF_TASKS: dict[str, str] = {
    "memory": "Check the whole counseling history for what matters now, in a few sentences.",
    "emotion": "Name the client's primary emotion now, one of: {emotions}. Answer with one word.",
    "attitude": "Is the client's attitude now positive or negative? Answer with one word.",
    "resistance": "Is the client resisting or changing topic? Answer yes or no.",
    "end_intent": "Does the client clearly want to end this session now? Answer yes or no.",
    "stage": "Which treatment phase is this? Answer with one id from: {phases}.",
    "strategy": "Choose one response strategy for a {attitude} attitude from: {strategies}. "
    "Answer with the id.",
    "reply": "Write the counselor's next reply in at most {max_words} words. Therapy: {therapy}. "
    "Phase: {phase}. Strategy: {strategy}. Client emotion: {emotion}. Notes: {summary}{closing}",
    "therapy": "A new session begins. Did the therapy so far help? Choose the therapy for this "
    "session, one id from: {therapies}. Answer with the id and one sentence.",
}
REF_SEQUENCE: tuple[tuple[str, str], ...] = (
    ("memory", "history"),
    ("emotion", "utterance"),
    ("attitude", "utterance"),
    ("resistance", "utterance"),
    ("end_intent", "utterance"),
    ("stage", "history"),
    ("memory", "history"),
    ("stage", "history"),
    ("attitude", "utterance"),
    ("strategy", "utterance"),
    ("reply", "session"),
)
"""Eleven calls a turn, in order, with what each sees: the whole multi-session history (the
memory check and the stage analysis, each twice), only the utterance (six), or the current
session's dialogue (the reply)."""
REF_OPENING: tuple[tuple[str, str], ...] = (("therapy", "history"), ("therapy", "history"))
"""Two calls at each session's opening (the therapy is evaluated twice); none at close."""


def pick(text: str, options: Sequence[str], default: str) -> str:
    """Return the first option (an id, or its spaced form) named in a model's free text."""
    low = text.lower()
    for option in options:
        if option.lower() in low or option.replace("_", " ").lower() in low:
            return option
    return default


def _usage(agent: str, completion: Any) -> CallUsage:
    """Describe a call; an empty answer counts as a fallback (a default stands in for it)."""
    return call_usage(ROLE, agent, completion.usage, fallback=not completion.text.strip())


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
            raise SessionStateError("open_session must be called first")
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
    """A model of the published reference design's call pattern (not its code or prompts).

    Eleven sequential calls a turn: four see the whole multi-session history, six only the
    utterance, the reply sees the current session. Each opening makes two therapy calls
    with the whole history; closing makes none. Prompts are short stand-ins, so the figures
    compare call patterns and context sizes, not wording.
    """

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
        self._opening_calls: list[CallUsage] = []

    def _history(self) -> str:
        return "\n\n".join(
            _transcript(s) for s in [*self.past, *([self.current] if self.current else [])]
        )

    def _context(self, scope: str) -> str:
        if scope == "history":
            return REF_CONTEXT[scope].format(text=self._history())
        if scope == "session":
            return REF_CONTEXT[scope].format(text=_transcript(self._now()))
        return ""

    def _ask(self, task: str, scope: str, text: str, calls: list[CallUsage], **slots: str) -> str:
        tax = self.taxonomy
        fields = {
            "emotions": ", ".join(tax.emotion_ids),
            "therapies": ", ".join(tax.therapy_ids),
            "phases": ", ".join(tax.phase_ids),
            "max_words": str(self.max_words),
            **slots,
        }
        system = REF_SYSTEM.format(
            task=REF_TASKS[task].format(**fields), context=self._context(scope)
        )
        messages: list[Message] = [
            {"role": "system", "content": system},
            {"role": "user", "content": REF_USER.format(text=text)},
        ]
        completion = self.router.complete(ROLE, messages)
        calls.append(_usage(f"reference.{task}", completion))
        return completion.text.strip()

    def open_session(self, patient_id: str, profile: PatientProfile) -> str:
        """Greet, after evaluating the therapy twice with the whole history (two calls)."""
        opening = super().open_session(patient_id, profile)
        self._opening_calls = []
        answer = ""
        for task, scope in REF_OPENING:
            answer = self._ask(task, scope, "(session starting)", self._opening_calls)
        tax = self.taxonomy
        self.therapy = pick(answer, tax.therapy_ids, self.therapy or tax.therapy_ids[0])
        return opening

    def opening_calls(self) -> list[CallUsage]:
        """Return the two therapy calls of the last opening."""
        return list(self._opening_calls)

    def respond(self, text: str) -> CounselorTurn:
        """Run the sequential pipeline and answer."""
        started = time.perf_counter()
        tax = self.taxonomy
        calls: list[CallUsage] = []
        got: dict[str, str] = {}
        for task, scope in self.sequence:
            if task == "strategy":
                attitude = pick(got.get("attitude", ""), ("negative", "positive"), "positive")
                allowed = [s.id for s in tax.strategies if s.attitude == attitude]
                answer = self._ask(
                    task, scope, text, calls, attitude=attitude, strategies=", ".join(allowed)
                )
                got[task] = pick(answer, allowed, allowed[0])
            elif task == "reply":
                closing = got.get("end_intent", "").lower().startswith("yes")
                got["reply"] = self._ask(
                    task,
                    scope,
                    text,
                    calls,
                    therapy=self.therapy,
                    phase=got.get("stage", ""),
                    strategy=got.get("strategy", ""),
                    emotion=got.get("emotion", ""),
                    summary=got.get("memory", "")[:600],
                    closing=" The client wants to end: close warmly." if closing else "",
                )
            else:
                got[task] = self._ask(task, scope, text, calls)
        closing = got.get("end_intent", "").lower().startswith("yes")
        reply = limit_words(got["reply"], self.max_words) or "I'm listening."
        self._now().exchanges.append(Exchange(patient=text, counselor=reply))
        self._now().therapies = [self.therapy] if self.therapy else []
        return CounselorTurn(
            reply=reply,
            closing=closing,
            strategy=got.get("strategy"),
            therapies=[self.therapy] if self.therapy else [],
            phase=pick(got.get("stage", ""), tax.phase_ids, tax.phase_ids[0]),
            calls=calls,
            latency_s=round(time.perf_counter() - started, 4),
        )

    def close_session(self) -> dict[str, Any] | None:
        """File the session away; the published design makes no call at close."""
        close = {"therapy": self.therapy, "calls": []}
        self._now().close = {"therapy": self.therapy}
        super().close_session()
        return close

    def rewind(
        self, patient_id: str, profile: PatientProfile, history: Sequence[PastSession]
    ) -> None:
        """Restore the completed sessions and the therapy last chosen."""
        super().rewind(patient_id, profile, history)
        last = history[-1] if history else None
        self.therapy = str((last.close or {}).get("therapy", "")) if last else ""


def _transcript(session: PastSession) -> str:
    """Render one session's dialogue, headed by its number."""
    lines = [f"Session {session.session_no}:", f"Counselor: {session.opening}"]
    for ex in session.exchanges:
        lines += [f"Client: {ex.patient}", f"Counselor: {ex.counselor}"]
    return "\n".join(lines)
