"""Multilingual memory with the real default embedder (USE multilingual v3) and real chroma."""

from __future__ import annotations

from pathlib import Path

import pytest

from theramind.config import ROLES, MemorySettings, ModelSpec, Settings
from theramind.errors import ConfigError
from theramind.memory import Embedder, HashingEmbedder, VectorMemory, build_memory, get_embedder
from theramind.memory.multilingual import load_encoder

FATHER_GOAL_ZH = "goal: 我想去医院看望父亲，但不想在那里惊恐发作"
UNRELATED_ZH = [
    "event: 我在面包店找了份新工作，上早班",
    "person: 我室友小杰每天半夜放很吵的音乐",
    "belief: 我觉得公司里没人尊重我的想法",
    "homework: 每天早上散步二十分钟",
    "event: 我的电脑坏了，论文草稿全丢了",
    "goal: 存够钱搬进自己的公寓",
    "person: 我最好的朋友去年移民加拿大了",
    "event: 我第二次没通过驾照考试",
    "belief: 我必须做到完美，不然别人会离开我",
    "goal: 在家做晚饭，不再天天点外卖",
    "event: 房东九月份又涨房租了",
    "person: 我同事老王总是抢我的功劳",
    "homework: 睡前写下三件好事",
    "event: 我和同事一起报名了攀岩馆",
    "goal: 学完网上的数据分析课程",
    "event: 我的自行车在火车站外面被偷了",
    "homework: 每天练习五分钟慢呼吸",
    "event: 我在公交车上和陌生人为了座位吵了一架",
    "goal: 重新开始弹吉他",
    "event: 这个月信用卡账单比我想的高很多",
]
SUMMARIES_ZH = [
    "我们讨论了来访者在面包店的压力，以及早班对睡眠的影响。",
    "我们探讨了完美主义和害怕被抛弃，并练习了呼吸。",
    "我们谈了房租带来的经济压力，做了一个简单的预算。",
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    """Return the default multilingual embedder, loaded once."""
    emb = get_embedder("use-multilingual-v3")
    emb.embed(["warm up"])
    return emb


def _memory(path: Path, embedder: Embedder) -> VectorMemory:
    models = {role: ModelSpec(backend="scripted") for role in ROLES}
    settings = Settings(models=models, memory=MemorySettings(path=str(path)))
    return build_memory(settings, embedder=embedder)


def test_default_settings_use_the_shared_multilingual_encoder(embedder: Embedder) -> None:
    assert MemorySettings().embedding_model == "use-multilingual-v3"
    assert get_embedder("usem3") is embedder and get_embedder("USE") is embedder
    assert embedder.name == "use:multilingual-v3"
    assert load_encoder() is load_encoder()  # one model per process, for every layer
    rows = embedder.embed(["我很难过", "I feel so sad", "今天天气不错"])
    assert rows.shape == (3, 512)
    assert float(rows[0] @ rows[1]) > float(rows[0] @ rows[2]) + 0.2


def test_a_chinese_session_five_question_recalls_the_session_one_fact_by_meaning(
    tmp_path: Path, embedder: Embedder
) -> None:
    store = _memory(tmp_path / "chroma", embedder)
    pid = "patient-zh"
    assert store.remember(pid, "disclosure", FATHER_GOAL_ZH, session_no=1, turn=2)
    store.remember(pid, "disclosure", "event: 我最近咖啡喝得越来越多", session_no=1)
    for i, text in enumerate(UNRELATED_ZH):
        store.remember(pid, "disclosure", text, session_no=2 + i % 3, turn=i % 5 + 1)
    for i, text in enumerate(SUMMARIES_ZH):
        store.remember(pid, "summary", text, session_no=2 + i)

    found = store.recall(pid, "去病房看我爸爸，对我来说还是很难。", current_session=5)
    assert found and found[0].text == FATHER_GOAL_ZH and found[0].session_no == 1
    for chatter in ("法国的首都是哪里？", "现在几点了？"):
        assert store.recall(pid, chatter, current_session=5) == []


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("我还是很想念我那只老宠物。", "Biscuit"),  # Chinese question, English intake
        ("Todavía extraño mucho a mi vieja mascota.", "Biscuit"),
        ("Saya masih sangat rindu hewan peliharaan lama saya.", "Biscuit"),
        ("小时候我在乡下帮家里养牛。", "farm"),
    ],
)
def test_english_intake_is_recalled_by_a_question_in_another_language(
    tmp_path: Path, embedder: Embedder, question: str, expected: str
) -> None:
    store = _memory(tmp_path / "chroma", embedder)
    facts = [
        "presenting problem: low mood and poor sleep since a bereavement",
        "Her dog Biscuit died last spring after fourteen years.",
        "Works night shifts at a hospital laundry and cannot sleep in the day.",
        "Grew up on a farm with three brothers.",
    ]
    store.remember_intake("p-cross", facts)
    found = store.recall("p-cross", question, current_session=1)
    assert found and expected in found[0].text


def test_a_store_embedded_with_another_model_is_refused_not_mixed(
    tmp_path: Path, embedder: Embedder
) -> None:
    old = _memory(tmp_path / "chroma", HashingEmbedder())
    old.remember("p1", "disclosure", "my dog Biscuit died", session_no=1)
    new = _memory(tmp_path / "chroma", embedder)
    with pytest.raises(ConfigError, match=r"embedded with 'hashing:384:3'.*use:multilingual-v3"):
        new.recall("p1", "my pet", current_session=2)
