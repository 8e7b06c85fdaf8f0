"""Free Chinese answers, and the step-by-step walk through the fixes."""

from __future__ import annotations

from typing import Any

import pytest

from actions.diagnosis.answers import (
    parse_account_status,
    parse_count,
    parse_overdue,
    parse_rating,
    parse_resume_choice,
    parse_sesame_score,
    parse_yes_no,
)
from actions.diagnosis.engine import default_rules
from actions.diagnosis.enums import Recheck, Reply, StepAnswer
from actions.diagnosis.facts import parse_facts
from actions.diagnosis.walk import (
    Step,
    answer_step,
    longest_wait,
    next_finding,
    steps_from_slot,
    unresolved,
)

SKIP = Reply.SKIP  # short for the tables below


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("六百多", 650), ("650左右", 650), ("七百出头", 710), ("不到600", 580),
        ("五百多分", 550), ("720", 720), ("大概680吧", 680), ("六七百", 650),
        ("六百八", 680), ("七百二十", 720), ("芝麻分才580", 580), ("600多", 650),
        ("不知道", SKIP), ("没看过", SKIP), ("很高", None), ("99999", None),
    ],
)  # fmt: skip
def test_sesame_score(text: str, value: Any) -> None:
    assert parse_sesame_score(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("一张", 1), ("两张卡", 2), ("绑了三张", 3), ("没绑", 0), ("0张", 0),
        ("一张都没绑", 0), ("申请了三四次", 4), ("好几次", 6), ("一次都没有", 0),
        ("试了七八个网贷", 8), ("没申请过", 0), ("不清楚", SKIP), ("嗯", None),
    ],
)  # fmt: skip
def test_counts(text: str, value: Any) -> None:
    assert parse_count(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("没有逾期", 0), ("从来没逾期", 0), ("有一笔逾期", 1), ("信用卡晚还过两次", 2),
        ("上个月逾期了", 1), ("有", 1), ("没有", 0), ("忘了", SKIP),
    ],
)  # fmt: skip
def test_overdue(text: str, value: Any) -> None:
    assert parse_overdue(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("实名了", True), ("都认证过了", True), ("是的", True), ("没问题", True),
        ("还没实名", False), ("手机号没验证", False), ("没有", False), ("嗯嗯", True),
        ("什么意思", None),
    ],
)  # fmt: skip
def test_yes_no(text: str, value: Any) -> None:
    assert parse_yes_no(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("正常", "normal"), ("好像被冻结了", "frozen"), ("被限制了", "restricted"),
        ("没激活", "not_activated"), ("账户没问题", "normal"), ("frozen", "frozen"),
        ("不知道", SKIP), ("蓝色", None),
    ],
)  # fmt: skip
def test_account_status(text: str, value: Any) -> None:
    assert parse_account_status(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [("5", 5), ("五星", 5), ("4分", 4), ("非常满意", 5), ("一般", 3), ("不满意", 2),
     ("跳过", SKIP), ("8", None), ("嗯", None), ("给4分吧", 4), ("打5星", 5),
     ("我借了10000", None), ('<img src=x onerror="window.__pwned=1">', None),
     ("v2", None)],
)  # fmt: skip
def test_rating(text: str, value: Any) -> None:
    assert parse_rating(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [("继续", True), ("接着上次的做", True), ("好的", True), ("重新开始", False),
     ("从头再来吧", False), ("上次的不用了，重来", False), ("不要", False),
     ("嗯？怎么回事", None), ("我想问点别的事情，跟这个没关系", None),
     ("算了", None)],
)  # fmt: skip
def test_resume_choice(text: str, value: Any) -> None:
    assert parse_resume_choice(text) == value


@pytest.mark.parametrize("text", ["你好", "您好！", "hello", "哈喽~"])
def test_a_greeting_is_no_yes_and_no_rating(text: str) -> None:
    # 你好 holds a 好, which once answered "完成了吗?" and rated 4 stars
    from actions.diagnosis.answers import parse_short_yes_no

    assert parse_short_yes_no(text) is None and parse_rating(text) is None
    assert parse_short_yes_no("好的") is True and parse_rating("挺好") == 4


@pytest.mark.parametrize(
    ("text", "cancel"),
    [("算了", True), ("算了不查了", True), ("先不弄了", True), ("不用了", True),
     ("没有", False), ("还没实名", False), ("不知道", False), ("正常", False)],
)  # fmt: skip
def test_never_mind(text: str, cancel: bool) -> None:
    from actions.diagnosis.answers import is_cancel

    assert is_cancel(text) is cancel


TABLE = default_rules()


def test_done_with_a_store_that_agrees_is_confirmed() -> None:
    finding = TABLE.finding("no_bank_card")
    fresh = parse_facts({"bank_cards": 1})
    assert answer_step(finding, True, fresh, TABLE) == Step(
        "no_bank_card", StepAnswer.DONE, Recheck.CONFIRMED
    )


def test_done_with_a_store_that_still_shows_it_is_pending() -> None:
    finding = TABLE.finding("account_frozen")
    fresh = parse_facts({"account_status": "frozen"})
    assert answer_step(finding, True, fresh, TABLE).recheck == Recheck.PENDING


def test_done_without_a_store_is_taken_on_the_users_word() -> None:
    finding = TABLE.finding("real_name_incomplete")
    assert answer_step(finding, True, None, TABLE).recheck == Recheck.NOTED


def test_no_is_cannot_and_time_based_yes_is_acknowledged() -> None:
    assert (
        answer_step(TABLE.finding("no_bank_card"), False, None, TABLE).answer
        == StepAnswer.CANNOT
    )
    ack = answer_step(TABLE.finding("low_sesame_score"), True, None, TABLE)
    assert ack.answer == StepAnswer.ACKNOWLEDGED and ack.recheck is None


def test_walk_moves_on_and_applies_done_fixes() -> None:
    facts = parse_facts({"account_status": "not_activated", "real_name_verified": False,
                         "bank_cards": 0, "sesame_score": 500})  # fmt: skip
    steps: list[Step] = []
    order = []
    while (finding := next_finding(facts, steps, TABLE)) is not None:
        order.append(finding.code)
        steps.append(answer_step(finding, True, None, TABLE))
    assert order == ["account_not_activated", "real_name_incomplete", "no_bank_card",
                     "low_sesame_score"]  # fmt: skip
    # the done fixes no longer hide the entry; the score still needs time
    assert [s.code for s in unresolved(steps)] == ["low_sesame_score"]
    assert longest_wait(steps, TABLE) == 60


def test_steps_survive_the_slot_round_trip() -> None:
    steps = [
        Step("no_bank_card", StepAnswer.DONE, Recheck.CONFIRMED),
        Step("low_activity", StepAnswer.CANNOT),
    ]
    assert steps_from_slot([s.to_slot() for s in steps]) == steps
    # plain JSON in the slot, not enum members
    assert [type(v) for v in steps[0].to_slot().values()] == [str, str, str]
    assert steps[1].to_slot()["recheck"] is None
    assert steps_from_slot(None) == [] and steps_from_slot("junk") == []


@pytest.mark.parametrize(
    ("text", "value"),
    [("弄好了", True), ("还没", False), ("做不到", False), ("搞定", True),
     ("借呗逾期了怎么办", None), ("完成了吗", None), ("我已经把银行卡绑好了然后又去看了一遍还是没有", None)],
)  # fmt: skip
def test_short_yes_no_is_only_for_short_replies(text: str, value: Any) -> None:
    from actions.diagnosis.answers import parse_short_yes_no

    assert parse_short_yes_no(text) == value
