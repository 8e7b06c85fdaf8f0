"""Which messages ask for a person (nlu/person_request.py and its phrase tables)."""

from __future__ import annotations

import pytest

from nlu.normaliser import normalise
from nlu.person_request import (
    PersonRequestPhrases,
    asks_for_person,
    read_person_request,
)

ASKS = [
    "借呗不见了，我要转人工",
    "借呗不见了我要转人工",
    "借呗额度降了 找人工",
    "借呗咋没了 快给我接真人",
    "转人工",
    "轉人工",
    "我要轉人工，借唄沒了",
    "幫我轉人工",
    "找人工",
    "人工客服",
    "人工服务",
    "转人公",
    "我要人工",
    "人工",
    "人工 人工 人工",
    "真人",
    "转个人工吧",
    "能帮我转人工吗",
    "能不能转真人？？",
    "到底转不转人工",
    "要不要转人工啊，我都等半天了",
    "不要机器人，我要人工",
    "不要机器人，要人工",
    "我要人工，别让机器回我了",
    "有没有真人客服",
    "怎么联系人工客服啊",
    "麻烦帮我接通人工坐席",
    "我需要人工介入",
    "打95188能找到人工吗",
    "换个人工",
    "zhuan rengong",
    "rengong kefu",
    "human agent please",
    "I want to talk to a human",
    "我想和人工沟通",
    "机器人答非所问，快把人工叫来",
    "我要跟活人说",
    "借呗被关了，还是转人工吧",
]

NOT_ASKS = [
    "不用转人工",
    "不要人工",
    "别转人工",
    "别转人工，我自己试试",
    "不需要人工客服",
    "不用帮我转人工了",
    "我不想找人工",
    "人工就不用了",
    "真人客服也不需要",
    "转人工就算了",
    "你是真人吗",
    "你是机器人还是真人客服",
    "是人工还是机器人在回答",
    "你是人工智能吧",
    "你是人工智障吗",
    "am i talking to a real person",
    "我是在和真人聊吗",
    "对面是活人吗",
    "注销需要人工处理吗",
    "借钱要不要人工审核",
    "借呗不见了",
    "客服你好",
    "有人吗",
    "你们这个客服一点用都没有",
    "客服热线是多少",
    "",
]


@pytest.mark.parametrize("text", ASKS)
def test_asks_for_a_person(text: str) -> None:
    assert asks_for_person(normalise(text)) is not None


@pytest.mark.parametrize("text", NOT_ASKS)
def test_does_not_ask_for_a_person(text: str) -> None:
    assert asks_for_person(normalise(text)) is None


def test_the_phrase_found_is_the_request() -> None:
    assert asks_for_person(normalise("借呗不见了，我要转人工")) == "转人工"


@pytest.mark.parametrize(
    "tables",
    [
        {"asks": ["转人工"], "vetoes": ["x"]},
        {"asks": [], "vetoes": ["x"], "negations": ["y"]},
        {"asks": ["转人工("], "vetoes": ["x"], "negations": ["y"]},
        {"asks": [3], "vetoes": ["x"], "negations": ["y"]},
    ],
)
def test_bad_tables_are_refused(tables: dict) -> None:
    with pytest.raises(ValueError):
        PersonRequestPhrases.from_tables(tables)


@pytest.mark.parametrize(
    "text",
    [
        "不用转人工",
        "不要人工",
        "别转人工，我自己试试",
        "人工就不用了",
        "不需要人工客服",
    ],
)
def test_a_declined_person_is_told_apart(text: str) -> None:
    found = read_person_request(normalise(text))
    assert found is not None and found.declined


@pytest.mark.parametrize("text", ["你是真人吗", "你是人工智能吧", "借呗不见了"])
def test_other_words_say_nothing_about_a_person(text: str) -> None:
    assert read_person_request(normalise(text)) is None
