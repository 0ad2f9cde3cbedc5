"""A two-session treatment in Chinese, end to end: scripted model, the configured real embedder.

Works with whatever `memory.embedding_model` the default config names: the memory is built
from the settings, not from a model chosen here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripted import Counselor, last_user
from theramind import TheraMind, load_config
from theramind.config import Settings
from theramind.llm import Request, ScriptedBackend
from theramind.locales import load_prompts
from theramind.memory import build_memory
from theramind.safety import screen
from theramind.safety.patterns import patterns_path
from theramind.services import build_services

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
PROFILE = {
    "patient_id": "zh-lin",
    "pseudonym": "小林",
    "age": 29,
    "language": "zh",
    "category": "emotion",
    "history": "大学毕业后一个人在上海工作，很少和家里联系。",
    "presenting_problem": "最近半年情绪低落，下班后什么都不想做。",
}
FACT = "我养了八年的猫团团上个月走丢了"
REPLIES = [
    "听起来团团对你来说非常重要，它走丢以后你一直很难受。",
    "这段时间你一个人扛着这份难过，一定很累。能多说说你们在一起的日子吗？",
    "谢谢你今天愿意说这么多。我们下次再接着聊团团和你的睡眠。",
    "你又想起了团团，夜里睡不着的时候，心里最常冒出的念头是什么？",
]


def _cjk_share(text: str) -> float:
    """The share of Chinese characters among the letters, the prompts' tags left out."""
    text = re.sub(r"</?[a-z_]+>", "", text)
    letters = [ch for ch in text if ch.isalpha()]
    return sum("\u4e00" <= ch <= "\u9fff" for ch in letters) / max(1, len(letters))


class ChineseCounselor(Counselor):
    """The scripted counselor, answering free text and session notes in Chinese."""

    def __init__(self) -> None:
        super().__init__(replies=list(REPLIES))

    def __call__(self, request: Request) -> Any:
        text = last_user(request)
        if request.schema_name == "Perception":
            out = super().__call__(request)
            if "自杀" in text:
                out |= {"risk_level": "high", "risk_evidence": "我想自杀"}
            return out | {"wants_to_end": "再见" in text}
        if request.schema_name == "SessionSummary":
            return {
                "summary": "来访者谈到养了八年的猫团团走丢后一直很难过，夜里睡不好。",
                "salient": [{"kind": "event", "text": "来访者养了八年的猫团团上个月走丢了"}],
                "next_focus": "团团走丢后的哀伤和睡眠",
            }
        if request.schema_name in ("EfficacyReport", "EfficacyVerdict"):
            return {
                "verdict": "effective",
                "reason": "来访者愿意谈论失去团团的难过，情绪强度在下降。",
            }
        if request.json_schema is None:
            return self.replies.pop(0) if self.replies else "我在听，你慢慢说。"
        return super().__call__(request)


@pytest.fixture
def chinese_settings(tmp_path: Path) -> Settings:
    return load_config(
        None,
        models={"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
        storage={"home": str(tmp_path / "home")},
        memory={"path": str(tmp_path / "chroma")},
        safety={"locale": "cn"},
    )


@pytest.fixture
def app(chinese_settings: Settings) -> Iterator[tuple[TheraMind, ScriptedBackend]]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in OFFLINE.items():
            mp.setenv(key, value)
        backend = ScriptedBackend(handler=ChineseCounselor())
        services = build_services(
            chinese_settings,
            backends={"counselor": backend},
            memory=build_memory(chinese_settings),
        )
        theramind = TheraMind(services)
        yield theramind, backend
        theramind.close()


def _system_templates() -> list[str]:
    zh = load_prompts("zh")
    return [v.split("{", 1)[0][:16] for k, v in zh.texts.items() if k.endswith("_system")]


def test_two_sessions_in_chinese_end_to_end(app: tuple[TheraMind, ScriptedBackend]) -> None:
    theramind, backend = app
    first = theramind.start_session("zh-lin", profile=PROFILE)
    assert first.plan.language == "zh"
    records = [
        first.respond(f"{FACT}，我到现在还在到处找它。").record,
        first.respond("晚上回到家，看到它的猫窝就想哭。").record,
        first.respond("今天先聊到这里吧，谢谢你，再见。").record,
    ]
    first.end()
    second = theramind.start_session("zh-lin")
    assert second.plan.language == "zh" and second.plan.session_no == 2
    asked = second.respond("我昨晚又梦见那只走丢的猫了，醒来以后很难受。").record
    records.append(asked)

    # Memory: session 2 recalls the session-1 fact about the cat, and the record keeps it.
    earlier = [m for m in asked.recalled if m.session_no == 1 and "团团" in m.text]
    assert earlier, [m.text for m in asked.recalled]

    # Replies are Chinese, and so are the prompts behind them.
    for record in records:
        assert record.language == "zh"
        assert _cjk_share(record.reply) > 0.9, record.reply
    starts = _system_templates()
    assert len(backend.calls) >= 12
    for call in backend.calls:
        system = [m["content"] for m in call.messages if m["role"] == "system"]
        user = [m["content"] for m in call.messages if m["role"] == "user"]
        assert len(system) == 1 and any(system[0].startswith(s) for s in starts), system[0][:80]
        assert _cjk_share(user[-1]) > 0.5, user[-1][:120]
    perceive = next(c for c in backend.calls if c.schema_name == "Perception")
    assert "来访者最新的话" in perceive.messages[-1]["content"]
    plan = next(c for c in backend.calls if c.schema_name == "StrategyChoice")
    assert "可选策略" in plan.messages[0]["content"]
    assert any(name in plan.messages[0]["content"] for name in ("情感反映", "内容复述", "解释"))
    summary = next(c for c in backend.calls if c.schema_name == "SessionSummary")
    assert "来访者：" in summary.messages[-1]["content"]

    # A crisis in Chinese: the Chinese protocol and the mainland-China line, in Chinese.
    crisis = second.respond("我想自杀，真的撑不下去了。").record
    assert crisis.crisis and crisis.risk_level == "high"
    crisis_call = backend.calls[-1]
    assert "请严格按照以下流程回应" in crisis_call.messages[0]["content"]
    assert "12356" in crisis.reply and _cjk_share(crisis.reply) > 0.8, crisis.reply


@pytest.mark.skipif(
    not patterns_path("zh").is_file(),
    reason="configs/safety/patterns/zh.yaml is missing: the Chinese risk patterns (issue 14, "
    "item 2, the layered screen) are not on this branch yet",
)
def test_the_screen_flags_a_chinese_crisis_message_in_a_chinese_session(
    app: tuple[TheraMind, ScriptedBackend],
) -> None:
    theramind, _ = app
    assert screen("我想自杀", languages=("zh",)).level in ("moderate", "high")
    session = theramind.start_session("zh-lin", profile=PROFILE)
    record = session.respond("我想自杀").record
    assert record.risk_screen.level in ("moderate", "high")
    assert record.crisis and "12356" in record.reply
