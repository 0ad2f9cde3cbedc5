"""Builders: counselors and patients from an experiment's specs, and per-session seeds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping

from theramind.config import ROLES, Settings
from theramind.llm import BaseBackend, ModelRouter, build_backend
from theramind.llm.endpoints import EndpointUsage, merge_usage
from theramind.llm.types import Completion, Request
from theramind.simulation.baselines import PlainCounselor, ReferenceCounselor
from theramind.simulation.counselors import Counselor, TheraMindCounselor
from theramind.simulation.experiment import CounselorSpec, PatientSpec
from theramind.simulation.llm_patient import LLMPatient
from theramind.simulation.patient import PatientSettings, SimulatedPatient
from theramind.simulation.scripted_patient import ScriptedPatient


class SharedBackend(BaseBackend):
    """One backend serving many tracks: calls pass through, `close` is left to the owner.

    Tracks share one HTTP connection pool, one embedded model or one in-process engine instead
    of building their own; per-call usage still lands in each track's records.
    """

    def __init__(self, inner: BaseBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.constraint = inner.constraint
        self.model = getattr(inner, "model", "")

    def complete(self, request: Request) -> Completion:
        """Run the request on the shared backend."""
        return self.inner.complete(request)

    async def acomplete(self, request: Request) -> Completion:
        """Async `complete`."""
        return await self.inner.acomplete(request)

    def stream(self, request: Request) -> Iterator[str]:
        """Stream from the shared backend."""
        yield from self.inner.stream(request)

    def check(self) -> None:
        """Check the shared backend."""
        self.inner.check()

    def close(self) -> None:
        """Leave the shared backend open (its owner closes it)."""


class BackendPool:
    """Backends built once per distinct model spec and handed to every track."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[str, BaseBackend] = {}

    def for_roles(
        self, overrides: Mapping[str, BaseBackend] | None = None
    ) -> dict[str, BaseBackend]:
        """Return a backend per role: `overrides` first, else the pooled one."""
        out: dict[str, BaseBackend] = dict(overrides or {})
        for role in ROLES:
            if role not in out:
                spec = self.settings.models[role]
                key = spec.model_dump_json()
                if key not in self._built:
                    self._built[key] = build_backend(spec)
                out[role] = SharedBackend(self._built[key])
        return out

    def endpoint_usage(self) -> dict[str, dict[str, float]]:
        """Return the usage of every model endpoint the pooled backends called, by URL."""
        totals: dict[str, EndpointUsage] = {}
        for backend in self._built.values():
            usage = getattr(backend, "endpoint_usage", None)
            if callable(usage):
                merge_usage(totals, usage())
        return {url: dict(vars(u)) for url, u in totals.items()}

    def close(self) -> None:
        """Close every pooled backend."""
        for backend in self._built.values():
            backend.close()
        self._built.clear()


def session_seed(seed: int, patient_id: str, session_no: int) -> int:
    """Derive a stable seed for one patient's session (the same for every counselor)."""
    digest = hashlib.sha256(f"{seed}\x1f{patient_id}\x1f{session_no}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def build_counselor(
    spec: CounselorSpec,
    settings: Settings,
    *,
    backends: Mapping[str, BaseBackend] | None = None,
) -> Counselor:
    """Build the counselor a spec names over `settings` (its own storage home)."""
    if spec.kind in ("theramind", "theramind_no_memory", "fixed_therapy"):
        return TheraMindCounselor.build(
            settings,
            backends=backends,
            use_memory=spec.kind != "theramind_no_memory",
            fixed_therapy=spec.kind == "fixed_therapy",
        )
    router = ModelRouter(settings, backends=backends)
    words = settings.limits.reply_max_words
    if spec.kind == "plain":
        return PlainCounselor(router, max_words=words)
    return ReferenceCounselor(
        router, settings.taxonomy(), max_words=words, repeat_checks=spec.repeat_checks
    )


def build_patient(
    spec: PatientSpec,
    settings: Settings,
    *,
    backends: Mapping[str, BaseBackend] | None = None,
) -> tuple[SimulatedPatient, str]:
    """Build a simulated patient; return it with the id of the model that plays it."""
    behaviour = PatientSettings.model_validate(spec.model_dump(exclude={"kind"}))
    attitudes = {s.id: s.attitude for s in settings.taxonomy().strategies}
    if spec.kind == "llm":
        router = ModelRouter(settings, backends=backends)
        patient = LLMPatient(router, behaviour, strategy_attitudes=attitudes)
        return patient, router.model_id("patient")
    return ScriptedPatient(behaviour, strategy_attitudes=attitudes), "scripted-patient"
