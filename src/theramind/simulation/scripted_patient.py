"""A deterministic simulated patient: varied, reproducible text from phrase banks and a seed."""

from __future__ import annotations

from theramind.records import CallUsage
from theramind.simulation.latent import Questionnaire, SessionInfo, self_report
from theramind.simulation.patient import Cue, SimulatedPatient
from theramind.simulation.phrases import utterance


class ScriptedPatient(SimulatedPatient):
    """A patient that needs no model: for tests and fast benchmarks.

    Everything it says follows from the profile, the session's random generator and the
    counselor's words, so the same seed gives the same conversation.
    """

    def trend(self) -> float:
        """Return how much better (positive) the patient feels than at the start of treatment."""
        if self.latent is None:
            return 0.0
        start, now = self.baseline(), self.latent
        return (start.phq9 + start.gad7) - (now.phq9 + now.gad7)

    def _say(self, cue: Cue) -> tuple[str, CallUsage | None]:
        profile, _ = self._ready()
        said = {patient for _, patient in self.history}
        for _ in range(4):  # draw again rather than repeat a line of this session
            text = utterance(
                profile,
                kind=cue.kind,
                round_no=self.round,
                session_no=self.session_no,
                trend=self.trend(),
                fact=cue.fact.text if cue.fact else None,
                closing=cue.closing,
                negative=cue.attitude == "negative",
                rng=self.rng,
                max_words=self.settings.max_words,
            )
            if text not in said:
                break
        return text, None

    def _questionnaire(self, info: SessionInfo) -> Questionnaire:
        profile, latent = self._ready()
        return self_report(latent, profile.style, self.rng)
