"""Read users' free Chinese answers to the bot's questions ("六百多", "绑了一张").

Pure functions: each returns the typed value, `Reply.SKIP` when the user says
they do not know (the bot then stops asking), or None when the answer is
unclear (the bot asks again).
"""

from __future__ import annotations

import re
from typing import Optional, Union

from actions.diagnosis.enums import Reply

# A typed value (a count, yes/no, an account status code), a skip, or unclear.
Answer = Union[int, bool, str, Reply, None]

_DIGITS = {"零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "俩": 2, "三": 3,
           "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip
_UNKNOWN = re.compile(
    r"不知道|不清楚|不记得|记不清|忘了|没看过|没查过|不确定|不懂|说不好"
)
_NEGATION = re.compile(r"没|未|不|无|木有|否")
_YES = re.compile(
    r"是|对|嗯|已经|了|好|有|过|完成|可以|都|搞定|行|ok|yes|done", re.IGNORECASE
)
_NONE = re.compile(
    r"没有|没绑|没申请|没借|一张都没|一次都没|一个都没|零|^0|都没|从来没|从没|无"
)
_SEVERAL = re.compile(r"好几|很多|不少|一堆|好多|N多|n多|多次|频繁|一大堆")
_RANGE = re.compile(
    r"([一二两三四五六七八九])([一二两三四五六七八九])(?=[次个张笔家回项]|$)"
)
# A greeting holds a 好 but says neither yes nor how good ("你好" is no "好的").
_GREETING = re.compile(
    r"^(你好|您好|你们好|大家好|哈喽|嗨|hi|hello)[呀啊吖!！。.~～]*$", re.IGNORECASE
)
# "Never mind" to the whole diagnosis, not an answer to any question.
_CANCEL = re.compile(
    r"算了|不查了|不用查了|不想查了|不弄了|不想弄了|先不弄|先不查|不需要了|不用了"
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CN_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百千幺俩]+")


def _cn_to_int(text: str) -> Optional[int]:
    """Chinese numeral to int: 六百八 -> 680, 七百二十 -> 720, 十二 -> 12, 三 -> 3."""
    if not text:
        return None
    total, current, last_unit = 0, 0, 1
    for char in text:
        if char in _DIGITS:
            current = _DIGITS[char]
        elif char in "十百千":
            unit = {"十": 10, "百": 100, "千": 1000}[char]
            total += (current or 1) * unit
            current, last_unit = 0, unit
        else:
            return None
    if current:
        # "六百八" means 680: a trailing digit after a unit is one unit lower.
        total += current * (last_unit // 10 if last_unit >= 100 else 1)
    return total


def _first_number(text: str) -> Optional[int]:
    match = _NUMBER.search(text)
    if match:
        return int(float(match.group()))
    for run in _CN_NUMBER.findall(text):
        value = _cn_to_int(run)
        if value is not None:
            return value
    return None


def is_greeting(text: str) -> bool:
    """A bare greeting ("你好"): an answer to nothing."""
    return bool(_GREETING.match(text.strip()))


def is_cancel(text: str) -> bool:
    """Whether the user drops the diagnosis for now ("算了", "不查了")."""
    return bool(_CANCEL.search(text))


def is_unknown(text: str) -> bool:
    """The user says they do not know."""
    return bool(_UNKNOWN.search(text))


def parse_sesame_score(text: str) -> Answer:
    """A rough Sesame score: "六百多" -> 650, "不到600" -> 580, "720分" -> 720."""
    if is_unknown(text):
        return Reply.SKIP
    range_match = re.search(r"([五六七八])([六七八九])百", text)
    if range_match:
        low, high = _DIGITS[range_match.group(1)], _DIGITS[range_match.group(2)]
        if high == low + 1:
            return (low + high) * 50  # 六七百 -> 650
    value = _first_number(text)
    if value is None:
        return None
    if value < 10:  # "六百多" read as 6 hundreds by digit-only text like "6百多"
        value *= 100
    elif 10 <= value < 100 and "百" in text:
        value *= 10
    if re.search(r"不到|以下|低于|没到|不足", text):
        value -= 20
    elif re.search(r"多|出头|以上|超过", text) and value % 100 == 0:
        value += 50 if "多" in text else 10
    return value if 350 <= value <= 950 else None


def parse_count(text: str) -> Answer:
    """A small count: "一张" -> 1, "两三次" -> 3, "没绑" -> 0, "好几次" -> 6."""
    if is_unknown(text):
        return Reply.SKIP
    range_match = _RANGE.search(text)
    if range_match:
        return max(_DIGITS[range_match.group(1)], _DIGITS[range_match.group(2)])
    value = _first_number(text)
    if value is not None and not re.search(r"一\S*都没", text):
        return value
    if _SEVERAL.search(text):
        return 6
    if _NONE.search(text):
        return 0
    return None


def parse_overdue(text: str) -> Answer:
    """Overdue items: "没有逾期" -> 0, "有一笔逾期" -> 1, "逾期过两次" -> 2."""
    if is_unknown(text):
        return Reply.SKIP
    if re.search(
        r"没有?逾期|未逾期|不逾期|从来?没|没有过|从不|按时|准时|没有$|^没$|^无$", text
    ):
        return 0
    count = parse_count(text)
    if isinstance(count, int) and count > 0:
        return count
    if re.search(r"逾期|晚还|迟还|有过|有$|^有", text):
        return 1
    return None


def parse_yes_no(text: str) -> Optional[bool]:
    """Yes/no to "did you complete …": negation wins ("还没实名" -> False)."""
    if re.search(r"没问题|没毛病|不是没", text):
        return True
    if _NEGATION.search(text):
        return False
    if _YES.search(text):
        return True
    return None


# Longer messages are questions or stories, not a yes/no answer.
SHORT_ANSWER_MAX = 12


def parse_short_yes_no(text: str) -> Optional[bool]:
    """Yes/no, but only for a short reply ("弄好了", "还没"), never a question."""
    text = text.strip()
    if len(text) > SHORT_ANSWER_MAX or re.search(
        r"[?？吗么呢]|怎么|咋|为啥|什么", text
    ):
        return None
    if is_greeting(text):
        return None
    return parse_yes_no(text)


def parse_yes_no_answer(text: str) -> Answer:
    """A short yes/no to a yes/no question, or a skip for "don't know".

    "Don't know" is looked for first: 不清楚 and 不记得 hold a negation and
    忘了 a 了, which the yes/no reading would take for an answer.
    """
    if is_unknown(text):
        return Reply.SKIP
    return parse_short_yes_no(text)


def parse_account_status(text: str) -> Answer:
    """Account state in the codes of the facts format."""
    if text in ("normal", "not_activated", "restricted", "frozen"):
        return text  # already mapped by the entity synonyms
    if is_unknown(text):
        return Reply.SKIP
    if re.search(r"冻结|冻住|冻了|封", text):
        return "frozen"
    if re.search(r"限制|受限|限权", text):
        return "restricted"
    if re.search(r"没激活|未激活|没有激活|激活不了", text):
        return "not_activated"
    if re.search(
        r"正常|没问题|没啥问题|好的|能用|挺好|没异常|没有异常|^是|^对|^嗯", text
    ):
        return "normal"
    return None


def parse_rating(text: str) -> Answer:
    """A 1-5 satisfaction rating; a skip when the user declines."""
    if is_greeting(text):
        return None
    if re.search(r"跳过|不评|不打分|算了|不想|不用", text):
        return Reply.SKIP
    # A digit standing alone ("5", "给4分"), not part of a number, a word or
    # code ("10000", "v1", "x=1").
    match = re.search(
        r"(?<![0-9A-Za-z_=.])[1-5](?![0-9A-Za-z_.])|[一二三四五](?=[星分颗]|$)",
        text.strip(),
    )
    if match:
        token = match.group()
        return int(token) if token.isdigit() else _DIGITS[token]
    if re.search(r"非常满意|很满意|太棒|完美|特别好", text):
        return 5
    if re.search(r"非常不满意|很差|太差|垃圾|没用", text):
        return 1
    if re.search(r"不满意|不太满意|不好", text):
        return 2
    if re.search(r"一般|还行|凑合", text):
        return 3
    if re.search(r"满意|不错|挺好|好", text):
        return 4
    return None


def wants_to_go_on(text: str) -> bool:
    """Whether the user asks to go on where we left off ("继续", "接着来")."""
    return bool(re.search(r"继续|接着|接上", text))


def parse_resume_choice(text: str) -> Optional[bool]:
    """To "continue where we left off, or start over?": True continues, False restarts.

    The two choices are read by their words first (重新开始 holds no negation,
    不用了，重来 holds one); then "never mind" is no choice (算了 holds a 了,
    a yes); a plain short yes/no answers the question as asked.
    """
    if re.search(r"重新|从头|重来|再查|新的|换个", text):
        return False
    if wants_to_go_on(text):
        return True
    if is_cancel(text):
        return None  # "算了" is neither: the user drops it for now
    return parse_short_yes_no(text)
