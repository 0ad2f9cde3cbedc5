"""The LLM judge: one rubric, one blinded transcript, per-item verdicts, a score computed in code.

The judge runs under the "judge" role of the model router, so it can have its own model. Its
output is validated against the rubric's verdict schema (with the router's bounded repair
retries); when no valid verdict comes back the score is MISSING (value None), never zero.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from theramind.evaluation.rubrics import Rubric, verdict_schema
from theramind.evaluation.scores import MetricInfo, Score, Scorer, Target
from theramind.evaluation.transcript import CLIENT, COUNSELOR, render_course, render_session
from theramind.llm import ModelRouter
from theramind.llm.types import Message
from theramind.locales import load_prompts

log = logging.getLogger(__name__)
ROLE = "judge"
SCORING = "2"
"""Bumped when the way verdicts become scores changes, so stored judgments are redone."""


def verdict_tokens(rubric: Rubric) -> int:
    """Completion tokens a verdict on every item needs (one short reason each)."""
    return 60 + 90 * len(rubric.items)


def _render_items(rubric: Rubric) -> str:
    lines = []
    for item in rubric.items:
        lines.append(f"- {item.id} ({item.name}): {' '.join(item.criterion.split())}")
        for rating, text in sorted(item.anchors.items()):
            lines.append(f"    {rating}: {' '.join(text.split())}")
    if rubric.scale.kind == "likert":
        lines.append(f"Ratings are integers from {rubric.scale.min} to {rubric.scale.max}.")
    return "\n".join(lines)


def judge_messages(
    rubric: Rubric,
    transcript: str,
    tid: str,
    *,
    sample: int = 0,
    samples: int = 1,
    language: str = "en",
) -> list[Message]:
    """Build the judge's prompt for one transcript (the schema instruction is added later).

    The frame is in the transcript's `language` (English when it has no judge texts); the
    transcript is escaped, so nothing in it can close the block or pose as the rubric.
    """
    prompts = load_prompts(language)
    note = prompts.text("judge.sample_note").format(k=sample + 1, n=samples) if samples > 1 else ""
    system = prompts.render(
        "judge.system",
        instruction=" ".join(rubric.instruction.split()),
        counselor=COUNSELOR,
        client=CLIENT,
        rubric_id=rubric.id,
        name=rubric.name,
        scope=rubric.scope,
        items=_render_items(rubric),
        sample_note=note,
    )
    user = prompts.render("judge.user", tid=tid, scope=rubric.scope, transcript=transcript)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


class RubricScorer(Scorer):
    """Scores a session or a course against one rubric with the judge model."""

    def __init__(
        self,
        rubric: Rubric,
        router: ModelRouter,
        *,
        samples: int = 1,
        names: Iterable[str] = (),
        max_chars: int = 12000,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> None:
        self.rubric = rubric
        self.router = router
        self.samples = max(1, samples)
        self.names = tuple(names)
        self.max_chars = max_chars
        self.max_tokens = max_tokens or verdict_tokens(rubric)
        self.temperature = temperature
        lo, hi = rubric.bounds
        self.info = MetricInfo(
            id=rubric.id,
            name=rubric.name,
            source="judge",
            scope=rubric.scope,
            scale_min=lo,
            scale_max=hi,
            higher_is_better=True,
            description=rubric.description,
        )

    @property
    def version(self) -> str:
        """The rubric's content hash and the scoring rules: a change is judged again."""
        return f"{self.rubric.version}.{SCORING}"

    def transcript(self, target: Target) -> tuple[str, str]:
        """Return the blinded transcript of a target and its opaque id."""
        if self.rubric.scope == "session":
            if target.session_no is None:
                raise ValueError(f"{self.rubric.id} is a session rubric; give a session number")
            return render_session(
                target.course, target.session_no, names=self.names, max_chars=self.max_chars
            )
        return render_course(target.course, names=self.names, max_chars=self.max_chars)

    def messages(self, target: Target) -> list[Message]:
        """Return the prompt the judge gets for a target."""
        text, tid = self.transcript(target)
        profile = target.course.profile
        return judge_messages(
            self.rubric,
            text,
            tid,
            sample=target.sample,
            samples=self.samples,
            language=profile.language if profile is not None else "en",
        )

    def score(self, target: Target) -> Score:
        """Ask the judge; compute the score from its item verdicts, or mark it missing."""
        schema = verdict_schema(self.rubric)
        try:
            result = self.router.structured(
                ROLE,
                self.messages(target),
                schema,
                max_tokens=self.max_tokens,
                temperature=self.temperature,
            )
        except Exception as exc:  # any judge failure is a missing score, never a zero
            log.warning(
                "judge failed on %s for %s: %s", self.rubric.id, target.course.key.slug, exc
            )
            return Score(
                value=None,
                explanation=f"judge failed: {type(exc).__name__}: {exc}"[:500],
                metadata={"error": type(exc).__name__},
            )
        verdict = result.value
        counted = self.rubric.passes(verdict) if self.rubric.scale.kind == "count" else {}
        items: dict[str, dict[str, object]] = {}
        lines = []
        for item in self.rubric.items:
            part = getattr(verdict, item.id)
            if self.rubric.scale.kind == "count":
                ok = counted[item.id]
                items[item.id] = {"passed": part.passed, "counted": ok, "reason": part.reason}
                mark = "pass" if ok else ("fail (pass without evidence)" if part.passed else "fail")
                lines.append(f"{item.id}: {mark} ({part.reason})")
            else:
                items[item.id] = {"rating": part.rating, "reason": part.reason}
                lines.append(f"{item.id}: {part.rating} ({part.reason})")
        usage = result.usage
        return Score(
            value=self.rubric.score(verdict),
            explanation="; ".join(lines),
            metadata={
                "items": items,
                "unsupported": sum(
                    1 for v in items.values() if v.get("passed") and not v.get("counted")
                ),
                "attempts": result.attempts,
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
            },
        )
