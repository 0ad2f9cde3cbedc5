"""Therapy decisions read back from a run: what each counselor proposed at a session's close and
what was applied, kept apart so an overridden proposal never reads as a change of therapy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from theramind.evaluation.runs import Course
from theramind.simulation.records import DecisionLog, TherapyStep, change_kind, decision_log

log = logging.getLogger(__name__)
DRAWN = ("switch", "adjust")
"""Applied decisions that change the therapy, hence are drawn between sessions."""


@dataclass(frozen=True)
class Decision:
    """The decision taken when one session of a course closed."""

    counselor: str
    seed: int
    session_no: int
    before: list[str]
    proposed: TherapyStep
    applied: TherapyStep
    reason: str

    @property
    def kind(self) -> str:
        """The applied decision's kind: start, keep, adjust or switch."""
        return self.applied.action

    @property
    def overridden(self) -> bool:
        """Whether the counselor proposed something other than what was applied."""
        return self.proposed.action != self.applied.action or set(self.proposed.therapies) != set(
            self.applied.therapies
        )

    @property
    def changes(self) -> bool:
        """Whether the applied decision changes the therapy."""
        return self.kind in DRAWN


def _recorded(course: Course, index: int) -> DecisionLog | None:
    s = course.sessions[index].log
    return s.decision or decision_log(s.counselor_close, s.therapies)


def course_decisions(course: Course) -> list[Decision]:
    """Every session's closing decision, in order (sessions without one are skipped).

    When the next session is in the run, the therapies it used are what was applied: a record
    that says otherwise (one written before decisions were recorded as applied) yields to them.
    """
    out = []
    for i, view in enumerate(course.sessions):
        record = _recorded(course, i)
        if record is None:
            continue
        applied = record.applied
        before = list(view.log.therapies)
        if i + 1 < len(course.sessions):
            used = course.sessions[i + 1].log.therapies
            if used and set(used) != set(applied.therapies):
                log.debug("%s session %d: applied read from the next session", course.key.slug, i)
                applied = TherapyStep(action=change_kind(before, used), therapies=list(used))
        out.append(
            Decision(
                counselor=course.key.counselor,
                seed=course.key.seed,
                session_no=view.session_no,
                before=before,
                proposed=record.proposed,
                applied=applied,
                reason=record.reason,
            )
        )
    return out


def step_text(step: TherapyStep) -> str:
    """Render a decision step: 'switch → act', 'keep cbt + mi'."""
    therapies = " + ".join(step.therapies) or "—"
    if step.action in DRAWN:
        return f"{step.action} → {therapies}"
    return f"{step.action} {therapies}"
