"""The asked facts: which questions are left, and the one merge of record and answers."""

from __future__ import annotations

from typing import Any, Dict, Optional

import pytest

from actions.diagnosis.enums import Reply
from actions.diagnosis.facts import FACT_SPECS, AccountFacts, parse_facts
from actions.diagnosis.questions import (
    ASKED_FACTS,
    answers_to_facts,
    merge_facts,
    questions_left,
)

NAMES = tuple(asked.name for asked in ASKED_FACTS)


def test_every_question_is_about_facts_of_the_facts_format() -> None:
    for asked in ASKED_FACTS:
        assert set(asked.facts) <= set(FACT_SPECS), asked.name
    assert len(set(NAMES)) == len(NAMES)


@pytest.mark.parametrize(
    "text", ["这个我也不知道呢", "不清楚", "不记得了", "忘了", "不确定", "说不好"]
)
def test_every_parser_hears_dont_know_as_a_skip(text: str) -> None:
    # Short ones too: 不清楚 holds a negation and 忘了 a 了, which a yes/no
    # reading once took for "no" and "yes" (the 不清楚 button said "not verified").
    for asked in ASKED_FACTS:
        assert asked.parse(text) is Reply.SKIP, (asked.name, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("是", True), ("实名了", True), ("没有", False), ("还没", False)],
)
def test_yes_no_questions_still_hear_yes_and_no(text: str, expected: bool) -> None:
    for asked in ASKED_FACTS:
        if asked.yes_no:
            assert asked.parse(text) is expected, (asked.name, text)


@pytest.mark.parametrize(
    ("record", "skipped", "left"),
    [
        (None, [], NAMES),
        (None, ["bank_cards"], tuple(n for n in NAMES if n != "bank_cards")),
        ({"account_status": "normal", "bank_cards": 1}, [],
         ("real_name_verified", "sesame_score", "overdue_count", "credit_inquiries_last_30d")),
        # one question covers name and phone: either in the record answers it
        ({"phone_verified": True}, [], tuple(n for n in NAMES if n != "real_name_verified")),
        ({"payments_last_30d": 3}, [], NAMES),  # a fact nobody asks for
    ],
)  # fmt: skip
def test_questions_left(
    record: Optional[Dict[str, Any]], skipped: list[str], left: tuple[str, ...]
) -> None:
    facts = parse_facts(record) if record is not None else None
    assert questions_left(facts, skipped) == left


def test_answers_become_facts() -> None:
    facts = answers_to_facts(
        {"account_status": "frozen", "real_name_verified": True, "bank_cards": 0,
         "sesame_score": None, "unrelated_slot": "x"}
    )  # fmt: skip
    assert facts.get("account_status") == "frozen"
    assert facts.phone_verified is True
    assert facts.bank_cards == 0 and facts.sesame_score is None
    no = answers_to_facts({"real_name_verified": False})
    assert no.real_name_verified is False and no.phone_verified is None


@pytest.mark.parametrize(
    ("record", "answers", "expected"),
    [
        # anonymous: the answers are all there is
        (None, {"bank_cards": 0, "sesame_score": 650},
         {"bank_cards": 0, "sesame_score": 650}),
        # the store wins where it knows; answers fill its gaps only
        ({"bank_cards": 2, "debt_ratio": 0.2}, {"bank_cards": 0, "sesame_score": 650},
         {"bank_cards": 2, "debt_ratio": 0.2, "sesame_score": 650}),
        # "yes" to the real-name question fills the phone the record lacks
        ({"real_name_verified": False}, {"real_name_verified": True},
         {"real_name_verified": False, "phone_verified": True}),
        ({"account_status": "frozen"}, {}, {"account_status": "frozen"}),
    ],
)  # fmt: skip
def test_merge_facts(
    record: Optional[Dict[str, Any]], answers: Dict[str, Any], expected: Dict[str, Any]
) -> None:
    kept = parse_facts(record) if record is not None else None
    assert merge_facts(kept, answers) == parse_facts(expected)


def test_merge_leaves_the_record_as_it_was() -> None:
    record = parse_facts({"bank_cards": 2})
    merge_facts(record, {"sesame_score": 650})
    assert record == AccountFacts(bank_cards=2)
