"""End to end on the real embedded model (SmolLM2-135M on llama.cpp) and real vector memory.

No assertion depends on the wording of the model's free text.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from theramind import TheraMind, load_config
from theramind.agents.schemas import perception_schema
from theramind.llm import ModelRouter
from theramind.records import Perception, SessionOutcome

pytestmark = pytest.mark.e2e


def test_structured_call_validates_20_of_20_at_temperature_07(tmp_path: Path) -> None:
    settings = load_config(storage={"home": str(tmp_path)})
    settings.models["counselor"].seed = None
    router = ModelRouter(settings)
    schema = perception_schema(tuple(settings.taxonomy().emotion_ids))
    messages = [
        {
            "role": "system",
            "content": "You are the diagnostician. Record how the patient presents.",
        },
        {"role": "user", "content": "Patient: I'm so anxious about my exams that I can't sleep."},
    ]
    results = [
        router.structured("counselor", messages, schema, temperature=0.7, retries=0)  # type: ignore[arg-type]
        for _ in range(20)
    ]
    valid = [r for r in results if not r.fallback]
    assert len(valid) == 20
    for r in valid:
        value = Perception.model_validate(r.value.model_dump())
        assert 0.0 <= value.intensity <= 1.0
        assert value.emotion in settings.taxonomy().emotion_ids


def test_two_sessions_of_three_turns_on_the_embedded_model(tmp_path: Path) -> None:
    app = TheraMind.from_config(storage={"home": str(tmp_path)})
    profile = {
        "patient_id": "e2e",
        "pseudonym": "Sam",
        "age": 29,
        "presenting_problem": "Panic before presentations at work; avoids meetings.",
        "category": "anxiety",
    }
    outcomes: list[SessionOutcome] = []
    openings = []
    try:
        for _ in range(2):
            session = app.start_session("e2e", profile=profile)
            openings.append(session.opening)
            for text in [
                "My heart races before every meeting and I want to run away.",
                "Last week I skipped the team presentation.",
                "I think that's all for today, bye.",
            ]:
                if session.status != "open":
                    break
                result = session.respond(text)
                assert result.reply.strip()
                assert len(result.record.calls) <= 3
                record = result.record
                assert record.perception.emotion in app.services.taxonomy.emotion_ids
                assert record.strategy in app.services.taxonomy.strategy_ids
            outcomes.append(session.end())
        first = outcomes[0]
        assert all(len(o.calls) <= 4 for o in outcomes)
        names = {t.id: t.name for t in app.services.taxonomy.therapies}
        assert any(names[t] in openings[1] for t in first.decision.therapies)
        second_plan = app.session("e2e", 2).plan
        assert second_plan.therapies == first.decision.therapies
        assert second_plan.phase == first.decision.phase
        fallbacks = [f for o in outcomes for f in o.fallbacks]
        turns = [t for n in (1, 2) for t in app.session("e2e", n).turns]
        perceive = [f for t in turns for f in t.fallbacks if f == "perceive"]
        plan = [t.turn for t in turns if "plan" in t.fallbacks]
        assert not fallbacks and not perceive, (fallbacks, perceive)
        # The 135M model misses the strategist's schema now and then (grammar or not); such a
        # turn must still be marked and answered, and it must stay the exception.
        assert len(plan) <= 1, plan
        for t in turns:
            if "plan" in t.fallbacks:
                assert any(c.agent == "strategist.plan" and c.fallback for c in t.calls)
                assert t.reply.strip() and t.strategy in app.services.taxonomy.strategy_ids
        assert app.services.memory is not None and app.services.memory.count("e2e") > 0
    finally:
        app.close()
