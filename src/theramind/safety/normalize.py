"""Text normalisation for the risk screen: undo the obfuscations that hide risk words.

Messages are folded to one plain form before any pattern runs: invisible characters dropped,
compatibility forms (full-width letters) folded by NFKC, accents and other combining marks
removed, Cyrillic and Greek look-alikes mapped to Latin letters, Traditional Chinese characters
mapped to Simplified ones, leetspeak inside words undone (`k!ll mys3lf`), letters written apart
joined (`s u i c i d e`, `k.i.l.l`), and common misspellings and slang rewritten (`sucide`,
`sewerslide`, `ctb`, `unaliving`). Each step is a small table or expression, so a false alarm
can be traced to the step that caused it.
"""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f]"
)
"""Zero-width, direction, joiner, variation-selector, BOM and tag characters."""

_HOMOGLYPHS = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "b", "е": "e", "ё": "e", "і": "i", "ї": "i", "ј": "j", "к": "k",
        "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y",
        "х": "x", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ү": "y", "һ": "h", "ӏ": "l",
        # Greek
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u", "ν": "v",
        "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ω": "w",
        # Latin look-alikes outside ASCII
        "ɡ": "g", "ı": "i", "ȷ": "j", "ʟ": "l", "ℓ": "l",
    }
)  # fmt: skip
"""Non-Latin letters that look like Latin ones (after lower-casing)."""

# Traditional -> Simplified for the characters the Chinese patterns use (and common neighbours).
_TRADITIONAL = (
    "殺結傷點關準備週藥經們沒別輕從並還會過這讓麼樣來開為說對實應離樓頂邊橋燒燙滅斷覺遺書囑錢"
    "槍繩難煩氣車軌後計劃畫決兒媽闆殘憂鬱壓處脫絕義厭夠盡頭幾萬張陽臺門鎖買農錯懲罰鬆當個嗎裡裏"
    "將雖願該無熱視頻題親電話靜與愛歡喪禮墳醫搶鐵體著讀學習時間給歲種兩鄰居孩寶媳婦爺嚇爛悶慘"
    "衝動麗見聽壞劑瓶幫擔憑隨麵飯網絡認識態變鐘現礙碼剛試聯繫係紮緊嘗傢伙"
)
_SIMPLIFIED = (
    "杀结伤点关准备周药经们没别轻从并还会过这让么样来开为说对实应离楼顶边桥烧烫灭断觉遗书嘱钱"
    "枪绳难烦气车轨后计划画决儿妈板残忧郁压处脱绝义厌够尽头几万张阳台门锁买农错惩罚松当个吗里里"
    "将虽愿该无热视频题亲电话静与爱欢丧礼坟医抢铁体着读学习时间给岁种两邻居孩宝媳妇爷吓烂闷惨"
    "冲动丽见听坏剂瓶帮担凭随面饭网络认识态变钟现碍码刚试联系系扎紧尝家伙"
)
_CHINESE = str.maketrans(_TRADITIONAL, _SIMPLIFIED)

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s", "!": "i", "|": "l", "+": "t"})  # fmt: skip
_LEET_RUN = re.compile(r"(?<=[a-z])[0134579@$!|+]{1,2}(?=[a-z])")
_SPACED = re.compile(r"(?<![a-z])[a-z](?:[ .*_~\-]{1,2}[a-z](?![a-z])){3,}")
_SPACED_JOINERS = re.compile(r"[ .*_~\-]")
_CJK = r"[\u3400-\u9fff\uf900-\ufaff]"
_CJK_GAP = re.compile(rf"(?<={_CJK})[ \t.·*_~\-]+(?={_CJK})")

_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rf"\b(?:{pattern})\b"), replacement)
    for pattern, replacement in (
        (
            r"su[iy]?c[iy]?de|suicd[ie]e?|suicid|sui?side|suicdie|siucide|suicied|suacide|"
            r"sucicide|sewer ?sli?de|sewerside|su[iy] ?side",
            "suicide",
        ),
        (r"sui?cd?i?dal|sucidal|suicdal|sui?sidal|suicidial|sucicidal|sewer ?slidal", "suicidal"),
        (r"kermit", "commit"),
        (r"ctb", "commit suicide"),
        (r"unaliv(?:ing)(?! (?:myself|me)\b)", "killing myself"),
        (r"unalive(?! (?:myself|me)\b)", "kill myself"),
        (r"unalive me", "kill myself"),
        (r"my ?slef|my ?sefl|myslf|mysself|myselve|mysef", "myself"),
        (r"kil(?= (?:myself|my self)\b)", "kill"),
        (r"selfharm\w*|slef harm|self har", "self harm"),
        (r"od(?= on (?:pills|tablets|meds|my meds|my pills|paracetamol))", "overdose"),
    )
)
"""Misspellings and slang rewritten to the words the patterns know (after lower-casing)."""


def fold(text: str) -> str:
    """Return the text lower-cased with invisible, compatibility and look-alike forms folded."""
    text = _INVISIBLE.sub("", text)
    text = unicodedata.normalize("NFKC", text)
    decomposed = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in decomposed if not unicodedata.combining(c))
    text = unicodedata.normalize("NFC", text).lower()
    return text.translate(_HOMOGLYPHS).translate(_CHINESE)


def _join_letters(match: re.Match[str]) -> str:
    return _SPACED_JOINERS.sub("", match.group(0))


def deobfuscate(text: str) -> str:
    """Undo leetspeak, letters written apart and gaps between Chinese characters."""
    text = _LEET_RUN.sub(lambda m: m.group(0).translate(_LEET), text)
    text = _SPACED.sub(_join_letters, text)
    return _CJK_GAP.sub("", text)


def rewrite_slang(text: str) -> str:
    """Rewrite common misspellings and slang for self-harm to plain words."""
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    return text
