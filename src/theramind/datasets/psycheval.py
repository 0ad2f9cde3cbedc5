"""PsychEval case JSON: a Chinese multi-session counseling case with a client file and a plan.

A case holds `client_info{static_traits, main_problem, topic, core_beliefs, growth_experiences,
special_situations[...]}`, `global_plan[...]` (one entry per stage or session) and `sessions[...]`.
The profile keeps the case's language: its texts stay in Chinese, and the per-session guidance
is written from the plan in the patient's voice. See docs/data.md for the mapping.
"""

from __future__ import annotations

import re
from typing import Any

from theramind.datasets.common import (
    Draft,
    RecordError,
    clip,
    read_json_records,
    safe_id,
    short_guidance,
    text_field,
    text_items,
)
from theramind.datasets.priors import age_prior, fill_hidden, name_prior, rng_for
from theramind.simulation.profiles import CATEGORIES

TOPIC_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("成瘾", "addiction"),
    ("酒", "addiction"),
    ("游戏", "addiction"),
    ("恋爱", "love"),
    ("婚姻", "love"),
    ("情感", "love"),
    ("失恋", "love"),
    ("亲子", "family"),
    ("家庭", "family"),
    ("父母", "family"),
    ("学业", "youth"),
    ("青少年", "youth"),
    ("校园", "youth"),
    ("焦虑", "anxiety"),
    ("惊恐", "anxiety"),
    ("人际", "social"),
    ("社交", "social"),
    ("职场", "stress"),
    ("工作", "stress"),
    ("压力", "stress"),
    ("成长", "self-growth"),
    ("自我", "self-growth"),
    ("抑郁", "emotion"),
    ("情绪", "emotion"),
)
"""Keywords of `client_info.topic` to categories, first match wins (documented in docs/data.md)."""
_CJK = re.compile(r"[\u4e00-\u9fff]")
_AGE = re.compile(r"(\d{1,3})")
AGE_KEYS = ("年龄", "age")
GENDER_KEYS = ("性别", "gender")
NAME_KEYS = ("姓名", "化名", "name")
GENDERS = {"女": "female", "男": "male", "female": "female", "male": "male"}
NOT_RECORDED = {"zh": "资料中未记录。", "en": "Not recorded in the source."}
GOAL_KEYS = ("目标", "goal", "内容", "content", "重点", "focus")
_THIRD_PERSON = re.compile(r"来访者|求助者|(?<![其])[她他](?![们人])")
GUIDANCE_FRAME = {
    "zh": "这次我想谈：{goal}",
    "en": "This time I want to talk about: {goal}",
}


def read(path: Any) -> list[tuple[str, Any]]:
    """Read the cases of a PsychEval JSON file (one case, or a list of cases)."""
    return read_json_records(path)


def language_of(texts: list[str]) -> str:
    """Return `zh` when most letters of the case are Chinese characters, else `en`."""
    joined = "".join(texts)
    letters = [ch for ch in joined if ch.isalpha()]
    cjk = sum(1 for ch in letters if _CJK.match(ch))
    return "zh" if letters and cjk / len(letters) >= 0.3 else "en"


def category_for(topic: str, problem: str) -> tuple[str, bool]:
    """Return the category for a topic (then the main problem) and whether it was a fallback."""
    key = topic.strip().lower()
    if key in CATEGORIES:
        return key, False
    for text in (topic, problem):
        for word, category in TOPIC_CATEGORIES:
            if word in text:
                return category, False
    return "emotion", True


def _traits(info: dict[str, Any]) -> dict[str, str]:
    raw = info.get("static_traits")
    if raw is None:
        return {}
    if isinstance(raw, str):
        return {"": raw.strip()} if raw.strip() else {}
    if not isinstance(raw, dict):
        raise RecordError("client_info.static_traits", "expected an object or text")
    return {str(k): str(v).strip() for k, v in raw.items() if v is not None and str(v).strip()}


def _pick(traits: dict[str, str], keys: tuple[str, ...]) -> str:
    for key in keys:
        for name, value in traits.items():
            if name.lower() == key:
                return value
    return ""


def _age(traits: dict[str, str]) -> int | None:
    raw = _pick(traits, AGE_KEYS)
    if not raw:
        return None
    match = _AGE.search(raw)
    if match is None or not 12 <= int(match.group(1)) <= 100:
        raise RecordError("client_info.static_traits.年龄", f"not an age in 12..100: {raw!r}")
    return int(match.group(1))


def plan_steps(value: Any) -> list[str]:
    """Return the plan's steps: of an object, its goal (or content) when it names one."""
    if isinstance(value, list):
        steps = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                goal = next((item[k] for k in GOAL_KEYS if isinstance(item.get(k), str)), None)
                if goal is not None:
                    item = goal
            steps += text_items(item, f"global_plan[{i}]")
        return steps
    return text_items(value, "global_plan")


def patient_voice(text: str, language: str) -> str:
    """Turn a counselor's note about the client into the client's own view (Chinese only)."""
    if language != "zh":
        return text
    return _THIRD_PERSON.sub("我", text)


def plan_guidance(plan: list[str], language: str) -> list[str]:
    """Turn the counselor's plan, one entry a session or stage, into the patient's guidance."""
    frame = GUIDANCE_FRAME.get(language, GUIDANCE_FRAME["en"])
    return [short_guidance(frame.format(goal=patient_voice(step, language))) for step in plan[:12]]


def problem_parts(problem: str) -> list[str]:
    """Split a main problem into its clauses (symptoms in the case's words), at most four."""
    parts = [p.strip() for p in re.split(r"[，,。；;！!？?]", problem) if len(p.strip()) >= 3]
    return [clip(p, 80) for p in parts[:4]]


def convert(record: Any, ref: str, seed: int) -> Draft:
    """Turn one PsychEval case into a profile draft.

    Raises:
        RecordError: the case is not an object, `client_info` or `main_problem` is missing,
            or a field has the wrong shape (named in the error).
    """
    if not isinstance(record, dict):
        raise RecordError("record", f"expected an object, got {type(record).__name__}")
    info = record.get("client_info")
    if not isinstance(info, dict):
        raise RecordError("client_info", "missing or not an object")
    try:
        problem = text_field(info, "main_problem", required=True)
        topic = text_field(info, "topic")
    except RecordError as exc:
        raise RecordError(f"client_info.{exc.field}", exc.message) from exc
    traits = _traits(info)
    beliefs = text_items(info.get("core_beliefs"), "client_info.core_beliefs")
    growth = text_items(info.get("growth_experiences"), "client_info.growth_experiences")
    special = text_items(info.get("special_situations"), "client_info.special_situations")
    plan = plan_steps(record.get("global_plan"))
    sessions = record.get("sessions")
    if sessions is not None and not isinstance(sessions, list):
        raise RecordError("sessions", "expected a list of sessions")
    language = language_of([problem, topic, *beliefs, *growth, *plan])
    draft = Draft(data={"id": safe_id("psycheval", ref), "language": language}, language=language)
    rng = rng_for(seed, f"psycheval:{ref}")
    category, fallback = category_for(topic, problem)
    if fallback:
        draft.defaulted.append("category")
    name = _pick(traits, NAME_KEYS)
    if name:
        draft.data["pseudonym"] = clip(name, 40)
    else:
        draft.default("pseudonym", name_prior(rng, language))
    age = _age(traits)
    if age is None:
        draft.default("age", age_prior(rng))
    else:
        draft.data["age"] = age
    gender = _pick(traits, GENDER_KEYS)
    if gender:
        draft.data["gender"] = GENDERS.get(gender.lower(), clip(gender, 30))
    not_recorded = NOT_RECORDED.get(language, NOT_RECORDED["en"])
    sep = "；" if language == "zh" else "; "
    if growth:
        draft.data["mental_health_history"] = clip(sep.join(growth), 800)
    else:
        draft.default("mental_health_history", not_recorded)
    draft.default("physical_health_history", not_recorded)
    used = {*AGE_KEYS, *GENDER_KEYS, *NAME_KEYS}
    other = [v if not k else f"{k}：{v}" for k, v in traits.items() if k.lower() not in used]
    context = f"（{sep.join(other)}）" if other and language == "zh" else ""
    if other and language != "zh":
        context = f"({sep.join(other)}) "
    draft.data["current_problems"] = clip(context + problem, 800)
    symptoms = [clip(topic, 80)] if topic else []
    draft.data["symptoms"] = list(dict.fromkeys([*symptoms, *problem_parts(problem)]))[:6] or [
        clip(problem, 80)
    ]
    if beliefs:
        draft.data["concerns"] = [clip(b, 160) for b in beliefs[:3]]
    else:
        draft.default("concerns", [clip(problem, 160)])
    draft.default("style", "plain")
    if plan:
        draft.data["guidance"] = plan_guidance(plan, language)
    else:
        draft.default("guidance", plan_guidance([topic or problem], language))
    facts = [clip(patient_voice(t, language), 240) for t in special if len(t) >= 3][:12]
    draft.data["disclosures"] = [
        {"text": text, "session": i + 1, "after_round": 3, "trust": 0.5}
        for i, text in enumerate(facts)
    ]
    fill_hidden(draft.data, draft.defaulted, category, rng)
    draft.data["category"] = category
    n_sessions = len(sessions) if isinstance(sessions, list) else 0
    draft.notes = f"topic={topic or '?'}; plan steps={len(plan)}; sessions={n_sessions}"
    return draft
