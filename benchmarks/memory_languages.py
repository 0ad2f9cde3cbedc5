"""Multilingual recall set for the memory benchmark: Chinese, Spanish and Indonesian patients.

Each language has twelve planted facts (the kinds a session stores: an English label id, then
the patient's own words) with a paraphrase that alludes to each without repeating it, and
everyday distractors built from small vocabularies, written for this benchmark. The same
twelve topics exist in English (a subset of `memory_bench.PLANTED`), so a cross-lingual row
can plant the English fact and ask in another language: notes kept in English, a patient who
speaks Chinese.
"""

from __future__ import annotations

import random
from typing import Any

from theramind.memory import VectorMemory

EN_TOPICS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 19)
"""Indices into `memory_bench.PLANTED` of the twelve topics every language covers, in order."""

PLANTED: dict[str, list[tuple[str, str]]] = {
    "zh": [
        ("event: 我父亲三月中风了，现在还在住院", "去病房看我爸爸对我来说还是很难。"),
        ("goal: 我想戒掉每天晚上喝酒的习惯", "这周我有三个晚上一滴酒都没碰。"),
        ("person: 我姐姐去年搬到澳大利亚去了", "家里没有亲人在身边，我特别孤单。"),
        ("event: 我一月份被仓库裁员了", "自从丢了工作，我不知道每天该干什么。"),
        ("belief: 我觉得自己是身边所有人的负担", "我觉得没有我打扰，大家会过得更好。"),
        ("event: 我养了十四年的狗饼干死了", "我还是总以为我的老宠物会在门口等我。"),
        ("goal: 我想在工作日的晚上十二点前睡着", "失眠让我几乎每晚都熬到两点。"),
        ("event: 上个月我在地铁上惊恐发作了", "我不敢再坐地下的列车，怕心又狂跳起来。"),
        ("person: 我前夫到现在还控制着我们共同的财产", "和前任为钱吵架让我浑身发抖。"),
        ("event: 我的会计期末考试挂了两次", "一想到又要重考那门试我就很害怕。"),
        ("goal: 我想在团队会议上敢于发言", "经理征求意见的时候我又一句话都没说。"),
        ("event: 我女儿被诊断出糖尿病", "管孩子打胰岛素的事让我筋疲力尽。"),
    ],
    "es": [
        (
            "event: mi padre tuvo un derrame en marzo y sigue en el hospital",
            "Visitar a mi papá en la planta todavía me cuesta mucho.",
        ),
        (
            "goal: quiero dejar de beber vino todas las noches entre semana",
            "Esta semana pasé tres tardes sin alcohol.",
        ),
        (
            "person: mi hermana María se mudó a Australia el año pasado",
            "Echo mucho de menos tener a mi familia cerca.",
        ),
        (
            "event: me despidieron del almacén en enero",
            "Desde que perdí el trabajo no sé qué hacer con mis días.",
        ),
        (
            "belief: creo que soy una carga para todos los que me rodean",
            "Siento que la gente estaría mejor sin que yo la molestara.",
        ),
        (
            "event: mi perro Galleta murió después de catorce años",
            "Todavía espero que mi vieja mascota me reciba en la puerta.",
        ),
        (
            "goal: quiero dormirme antes de medianoche los días de trabajo",
            "El insomnio me tiene despierta hasta las dos casi todas las noches.",
        ),
        (
            "event: tuve un ataque de pánico en el metro el mes pasado",
            "Me da miedo volver a subir al tren subterráneo por si se me acelera el corazón.",
        ),
        (
            "person: mi exmarido todavía controla nuestras finanzas",
            "Las discusiones de dinero con mi expareja me dejan temblando.",
        ),
        (
            "event: suspendí dos veces el examen final de contabilidad",
            "Me aterra tener que presentarme otra vez a esa prueba.",
        ),
        (
            "goal: quiero atreverme a hablar en las reuniones del equipo",
            "Otra vez me quedé callada cuando el jefe pidió ideas.",
        ),
        (
            "event: a mi hija le diagnosticaron diabetes",
            "Controlar la insulina de mi niña me agota.",
        ),
    ],
    "id": [
        (
            "event: ayah saya terkena stroke bulan Maret dan masih dirawat di rumah sakit",
            "Menjenguk bapak di bangsal masih sangat berat buat saya.",
        ),
        (
            "goal: saya ingin berhenti minum anggur setiap malam hari kerja",
            "Minggu ini saya bisa tiga malam tanpa alkohol.",
        ),
        (
            "person: kakak perempuan saya pindah ke Australia tahun lalu",
            "Saya sangat rindu punya saudara yang tinggal dekat.",
        ),
        (
            "event: saya di-PHK dari gudang bulan Januari",
            "Sejak kehilangan pekerjaan saya tidak tahu harus berbuat apa setiap hari.",
        ),
        (
            "belief: saya merasa menjadi beban bagi semua orang di sekitar saya",
            "Rasanya orang-orang akan lebih baik kalau tidak saya repotkan.",
        ),
        (
            "event: anjing saya Biskuit mati setelah empat belas tahun",
            "Saya masih berharap hewan peliharaan lama saya menyambut di pintu.",
        ),
        (
            "goal: saya ingin tidur sebelum tengah malam pada hari kerja",
            "Insomnia membuat saya terjaga sampai jam dua hampir setiap malam.",
        ),
        (
            "event: saya mengalami serangan panik di kereta bawah tanah bulan lalu",
            "Saya takut naik MRT lagi kalau-kalau jantung saya berdebar kencang.",
        ),
        (
            "person: mantan suami saya masih mengendalikan keuangan kami",
            "Bertengkar soal uang dengan mantan pasangan membuat saya gemetar.",
        ),
        (
            "event: saya gagal ujian akhir akuntansi dua kali",
            "Saya takut sekali harus mengulang tes itu lagi.",
        ),
        (
            "goal: saya ingin berani bicara di rapat tim",
            "Saya diam lagi waktu atasan meminta ide.",
        ),
        (
            "event: anak perempuan saya didiagnosis diabetes",
            "Mengurus suntikan insulin anak saya sangat melelahkan.",
        ),
    ],
}

_VOCAB: dict[str, dict[str, list[str]]] = {
    "zh": {
        "subjects": [
            "我老板",
            "我妈妈",
            "我室友",
            "一个同事",
            "我对象",
            "我老师",
            "我邻居",
            "我哥哥",
        ],
        "actions": [
            "批评了我的报告",
            "忘了我的生日",
            "让我加班",
            "请我去烧烤",
            "抱怨噪音太大",
            "借给我一些钱",
            "取消了我们的计划",
            "送了我一本书",
            "没回我的消息",
            "夸我做饭好吃",
        ],
        "contexts": ["星期一", "上周末", "午饭的时候", "在车站", "在电话里", "健身之后", "在超市"],
        "feelings": ["我有点烦", "我很感激", "我没放在心上", "我一直在想这件事", "我笑了"],
    },
    "es": {
        "subjects": [
            "mi jefe",
            "mi madre",
            "mi compañera de piso",
            "un colega",
            "mi pareja",
            "mi profesora",
            "mi vecino",
            "mi hermano",
        ],
        "actions": [
            "criticó mi informe",
            "olvidó mi cumpleaños",
            "me pidió quedarme hasta tarde",
            "me invitó a una barbacoa",
            "se quejó del ruido",
            "me prestó dinero",
            "canceló nuestros planes",
            "me regaló un libro",
            "ignoró mi mensaje",
            "elogió mi comida",
        ],
        "contexts": [
            "el lunes",
            "el fin de semana pasado",
            "durante el almuerzo",
            "en la estación",
            "por teléfono",
            "después del gimnasio",
            "en el supermercado",
        ],
        "feelings": [
            "y me molestó",
            "y me sentí agradecida",
            "y no le di importancia",
            "y no pude dejar de pensarlo",
            "y me reí",
        ],
    },
    "id": {
        "subjects": [
            "bos saya",
            "ibu saya",
            "teman sekamar saya",
            "seorang rekan kerja",
            "pasangan saya",
            "guru saya",
            "tetangga saya",
            "kakak laki-laki saya",
        ],
        "actions": [
            "mengkritik laporan saya",
            "lupa ulang tahun saya",
            "menyuruh saya lembur",
            "mengajak saya barbekyu",
            "mengeluh soal kebisingan",
            "meminjamkan saya uang",
            "membatalkan rencana kami",
            "memberi saya buku",
            "mengabaikan pesan saya",
            "memuji masakan saya",
        ],
        "contexts": [
            "hari Senin",
            "akhir pekan lalu",
            "saat makan siang",
            "di stasiun",
            "lewat telepon",
            "setelah dari gym",
            "di supermarket",
        ],
        "feelings": [
            "dan saya kesal",
            "dan saya bersyukur",
            "dan saya tidak ambil pusing",
            "dan saya terus memikirkannya",
            "dan saya tertawa",
        ],
    },
}

OFF_TOPIC: dict[str, list[str]] = {
    "en": [
        "What's the capital of France?",
        "Can you tell me what time it is?",
        "How many legs does a spider have?",
        "What is the boiling point of water?",
    ],
    "zh": ["法国的首都是哪里？", "现在几点了？", "蜘蛛有几条腿？", "水的沸点是多少度？"],
    "es": [
        "¿Cuál es la capital de Francia?",
        "¿Qué hora es?",
        "¿Cuántas patas tiene una araña?",
        "¿A qué temperatura hierve el agua?",
    ],
    "id": [
        "Apa ibu kota Prancis?",
        "Jam berapa sekarang?",
        "Berapa jumlah kaki laba-laba?",
        "Berapa titik didih air?",
    ],
}
_LABELS = ["event", "person", "belief", "goal", "homework"]


def english_planted() -> list[tuple[str, str]]:
    """Return the twelve shared topics in English (fact, paraphrase)."""
    from benchmarks.memory_bench import PLANTED as EN

    return [EN[i] for i in EN_TOPICS]


def distractors(language: str, n: int, rng: random.Random) -> list[str]:
    """Return `n` everyday disclosures in `language` ('en' uses the main benchmark's)."""
    if language == "en":
        from benchmarks.memory_bench import distractors as english

        return english(n, rng)
    v = _VOCAB[language]
    sep = "，" if language == "zh" else " "
    out = []
    for i in range(n):
        parts = [rng.choice(v["contexts"]), rng.choice(v["subjects"]), rng.choice(v["actions"])]
        head = "".join(parts) if language == "zh" else " ".join(parts[1:] + parts[:1])
        out.append(f"{_LABELS[i % len(_LABELS)]}: {head}{sep}{rng.choice(v['feelings'])}")
    return out


def recall_set(
    memory: VectorMemory,
    facts_language: str,
    query_language: str,
    rng: random.Random,
    *,
    patients: int = 3,
    facts_each: int = 5,
    noise: int = 60,
) -> dict[str, Any]:
    """Plant facts among noise in sessions 1 to 3, ask in session 10; score recall@k and hit@1."""
    facts = english_planted() if facts_language == "en" else PLANTED[facts_language]
    queries = english_planted() if query_language == "en" else PLANTED[query_language]
    probes: list[tuple[str, str | None, str]] = []
    for p in range(patients):
        pid = f"lang-{facts_language}-{query_language}-{p}"
        chosen = rng.sample(range(len(facts)), facts_each)
        memory.remember_many(
            pid,
            [("disclosure", t) for t in distractors(facts_language, noise, rng)],
            session_no=1 + p % 9,
        )
        keys = memory.remember_many(
            pid, [("disclosure", facts[i][0]) for i in chosen], session_no=1 + p % 3
        )
        probes.extend((pid, key, queries[i][1]) for key, i in zip(keys, chosen, strict=True))
    hits_k = hits_1 = 0
    for pid, key, query in probes:
        ids = [m.id for m in memory.recall(pid, query, current_session=10)]
        hits_k += key in ids
        hits_1 += bool(ids) and ids[0] == key
    off = OFF_TOPIC[query_language]
    empty = [
        memory.recall(pid, q, current_session=10) == []
        for pid in {p for p, _, _ in probes}
        for q in off
    ]
    return {
        "facts": facts_language,
        "queries": query_language,
        "probes": len(probes),
        f"recall_at_{memory.settings.top_k}": round(hits_k / len(probes), 3),
        "hit_at_1": round(hits_1 / len(probes), 3),
        "off_topic_recalls_nothing": round(sum(empty) / len(empty), 3) if empty else None,
    }


def bench_languages(memory: VectorMemory, rng: random.Random, **sizes: int) -> dict[str, Any]:
    """Score recall per language (facts and queries in it) and across languages (English facts)."""
    out: dict[str, Any] = {"embedder": memory.embedder.name}
    for language in ("en", "zh", "es", "id"):
        out[language] = recall_set(memory, language, language, rng, **sizes)
    for language in ("zh", "es", "id"):
        out[f"en->{language}"] = recall_set(memory, "en", language, rng, **sizes)
    return out
