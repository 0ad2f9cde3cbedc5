"""Therapy decisions read back from a run.

What each counselor proposed at a session's close and
what was applied, kept apart so an overridden proposal never reads as a change of therapy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from theramind.evaluation.runs import Course
from theramind.simulation.records import (
    DecisionLog,
    SessionLog,
    TherapyStep,
    change_kind,
    decision_log,
)

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
        return is_overridden(self.proposed, self.applied)

    @property
    def changes(self) -> bool:
        """Whether the applied decision changes the therapy."""
        return self.kind in DRAWN


def is_overridden(proposed: TherapyStep, applied: TherapyStep) -> bool:
    """Whether what was applied differs from what was proposed (kind or therapies)."""
    return proposed.action != applied.action or set(proposed.therapies) != set(applied.therapies)


def recorded(s: SessionLog) -> DecisionLog | None:
    """Return a session's decision record (rebuilt from its close record in older runs)."""
    return s.decision or decision_log(s.counselor_close, s.therapies)


def applied_step(
    record: DecisionLog, before: Sequence[str], used_next: Sequence[str] | None
) -> TherapyStep:
    """Return the decision that was applied.

    The next session's therapies when that session is in the run
    (a record written before decisions were recorded as applied yields to them), else the
    record's own account.
    """
    if used_next and set(used_next) != set(record.applied.therapies):
        return TherapyStep(action=change_kind(before, used_next), therapies=list(used_next))
    return record.applied


def course_decisions(course: Course) -> list[Decision]:
    """Every session's closing decision, in order (sessions without one are skipped).

    When the next session is in the run, the therapies it used are what was applied.
    """
    out = []
    for i, view in enumerate(course.sessions):
        record = recorded(view.log)
        if record is None:
            continue
        before = list(view.log.therapies)
        nxt = course.sessions[i + 1].log.therapies if i + 1 < len(course.sessions) else None
        applied = applied_step(record, before, nxt)
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
