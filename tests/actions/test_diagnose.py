"""The diagnosis's first half: start a diagnosis, read the facts, diagnose."""

from __future__ import annotations

import time
from typing import Any, Dict

import pytest
import yaml

from actions.common.facts import RECORD_SLOT
from actions.diagnose import diagnose, next_fact, read, start
from actions.diagnosis.questions import ASKED_FACTS
from actions.services.accounts import SqlAccountStore
from actions.services.cases import case_store
from devtools.project import ROOT
from tests.actions.support import (
    asked_turn,
    asks,
    fixture_record,
    responses,
    run_form,
    slots,
    turn_of,
    user,
)


async def test_identified_account_is_looked_up(seeded_db_url: str) -> None:
    turn = turn_of(
        "demo_account_frozen", latest_message=user("借呗没了", "jiebei_entry_missing")
    )
    await start(turn)
    assert responses(turn.dispatcher) == [
        "utter_situation_entry_missing",
        "utter_lookup_found",
    ]
    assert turn.dispatcher.messages[1]["account_id"] == "demo_account_frozen"
    set_ = slots(turn.events())
    assert set_["facts_source"] == "store" and set_["problem_text"] == "借呗没了"
    # the record is kept once, whole; the answer slots stay the user's
    assert set_[RECORD_SLOT] == fixture_record("demo_account_frozen")
    assert set_[RECORD_SLOT]["sesame_score"] == 712
    assert not set_.keys() & {asked.name for asked in ASKED_FACTS}
    # counted as abandoned until it ends: a conversation that just stops is
    assert case_store().outcome("demo_account_frozen")["outcome"] == "abandoned"
    assert set_["diagnosis_unfinished"] is True


async def test_unknown_sender_is_asked(seeded_db_url: str) -> None:
    turn = turn_of("someone", latest_message=user("额度没了", "jiebei_quota"))
    await start(turn)
    assert responses(turn.dispatcher) == ["utter_situation_quota", "utter_ask_intro"]
    assert slots(turn.events())["facts_source"] == "user"
    # nothing known and nothing kept before: no event for the empty record
    assert RECORD_SLOT not in slots(turn.events())
    assert "sesame_score" not in slots(turn.events())


async def test_a_new_diagnosis_clears_the_last_ones_walk_only(
    seeded_db_url: str,
) -> None:
    turn = turn_of(
        "someone",
        latest_message=user("额度没了", "jiebei_quota"),
        slots={"findings": ["no_bank_card"], "current_finding": None,
               RECORD_SLOT: fixture_record("demo_healthy"), "sesame_score": 650},
    )  # fmt: skip
    await start(turn)
    set_ = slots(turn.events())
    assert set_["findings"] is None and set_[RECORD_SLOT] is None
    # an empty slot is not cleared again; the user's answers stay
    assert "current_finding" not in set_ and "sesame_score" not in set_


async def test_store_down_falls_back_to_asking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCOUNT_DB_URL", "postgresql://postgres@127.0.0.1:1/none")
    turn = turn_of(
        "demo_account_frozen", latest_message=user("借呗没了", "jiebei_entry_missing")
    )
    await start(turn)
    assert responses(turn.dispatcher)[-1] == "utter_lookup_unavailable"
    assert slots(turn.events())["facts_source"] == "unavailable"


async def test_slow_store_times_out(
    monkeypatch: pytest.MonkeyPatch, seeded_db_url: str
) -> None:
    monkeypatch.setenv("ACCOUNT_LOOKUP_TIMEOUT", "0.2")

    def slow_get(self: SqlAccountStore, account_id: str) -> Any:
        time.sleep(1.5)
        raise AssertionError("should have timed out")

    monkeypatch.setattr(SqlAccountStore, "get", slow_get)
    turn = turn_of("demo_healthy", latest_message=user("x", "jiebei_quota"))
    started = time.monotonic()
    await start(turn)
    assert time.monotonic() - started < 1.2
    assert slots(turn.events())["facts_source"] == "unavailable"


@pytest.mark.parametrize(
    ("slot", "text", "expected"),
    [
        ("sesame_score", "六百多", 650),
        ("bank_cards", "绑了一张", 1),
        ("overdue_count", "没有逾期", 0),
        ("account_status", "被冻结了", "frozen"),
        ("real_name_verified", "还没实名", False),
        ("credit_inquiries_last_30d", "申请了七八次", 8),
    ],
)
def test_free_answers_are_read(slot: str, text: str, expected: Any) -> None:
    turn = turn_of(latest_message=user(text, "inform"))
    assert read(turn, slot, text, asked=True) == {slot: expected}
    assert turn.dispatcher.messages == []


def test_unknown_is_skipped_and_unclear_asked_again() -> None:
    turn = turn_of(
        latest_message=user("不知道", "deny"),
        slots={"facts_skipped": ["bank_cards"], "requested_slot": "sesame_score"},
    )
    skipped = read(turn, "sesame_score", "不知道", asked=True)
    assert skipped == {
        "sesame_score": None,
        "facts_skipped": ["bank_cards", "sesame_score"],
    }
    assert read(turn, "sesame_score", "很高吧", asked=True) == {"sesame_score": None}
    assert responses(turn.dispatcher) == ["utter_answer_unclear"]
    # words taken from the opening message were no answer: nothing to repeat
    assert read(turn, "sesame_score", "很高吧", asked=False) == {"sesame_score": None}
    assert responses(turn.dispatcher) == ["utter_answer_unclear"]


def test_the_next_question_is_one_the_kept_record_lacks() -> None:
    partial = turn_of(
        slots={RECORD_SLOT: fixture_record("demo_partial_facts"),
               "facts_skipped": ["overdue_count"], "real_name_verified": True},
    )  # fmt: skip
    # the record knows the status and the cards; real name answered already
    assert next_fact(partial) == "sesame_score"
    partial.set(sesame_score=650)
    # the user skipped overdue
    assert next_fact(partial) == "credit_inquiries_last_30d"
    full = turn_of(slots={RECORD_SLOT: fixture_record("demo_healthy")})
    assert next_fact(full) is None


def test_diagnose_identified_account_from_the_kept_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_store(self: SqlAccountStore, account_id: str) -> Any:
        raise AssertionError("the kept record should have been used")

    monkeypatch.setattr(SqlAccountStore, "get", no_store)
    turn = turn_of(
        "demo_multi_credit",
        slots={"facts_source": "store", "account_id": "demo_multi_credit",
               RECORD_SLOT: fixture_record("demo_multi_credit")},
    )  # fmt: skip
    diagnose(turn)
    said = responses(turn.dispatcher)
    assert said[0] == "utter_diagnosis_intro"
    assert turn.dispatcher.messages[0]["count"] == 4
    assert said[1:5] == [
        "utter_cause_poor_credit_record",
        "utter_cause_frequent_credit_inquiries",
        "utter_cause_high_debt_ratio",
        "utter_cause_low_sesame_score",
    ]
    assert slots(turn.events())["current_finding"] == "poor_credit_record"


def test_diagnose_anonymous_answers_and_no_cause() -> None:
    answers = {"facts_source": "user", "account_status": "normal", "real_name_verified": True,
               "bank_cards": 2, "sesame_score": 700, "overdue_count": 0,
               "credit_inquiries_last_30d": 0}  # fmt: skip
    turn = turn_of("anon", slots=answers)
    diagnose(turn)
    assert responses(turn.dispatcher) == ["utter_no_single_cause"]
    assert slots(turn.events()) == {"findings": []}
    partial = turn_of("anon", slots={"facts_source": "user"})
    diagnose(partial)
    assert responses(partial.dispatcher) == ["utter_no_single_cause_partial"]


async def test_an_answer_is_read_and_the_next_question_asked() -> None:
    events, said = await run_form(
        asked_turn("sesame_score", "大概六百八吧", "inform", facts_source="user")
    )
    set_ = slots(events)
    assert set_["sesame_score"] == 680
    assert set_["requested_slot"] == "account_status"  # Rasa asks it
    assert said == []


async def test_the_last_answer_brings_the_diagnosis_and_first_step() -> None:
    answered: Dict[str, Any] = {
        "account_status": "normal", "bank_cards": 1, "sesame_score": 650,
        "overdue_count": 0, "facts_source": "user",
    }  # fmt: skip
    last = asked_turn("credit_inquiries_last_30d", "没申请过", "inform", **answered,
                      real_name_verified=False)  # fmt: skip
    assert await asks(last) == (
        [
            "utter_diagnosis_intro",
            "utter_cause_real_name_incomplete",
            "utter_diagnosis_walk_intro",
            "utter_fix_real_name_incomplete",
            "utter_ask_step_done",
        ],
        "step_answer",
    )


async def test_a_digression_reads_nothing_so_rasa_hands_it_to_the_rules() -> None:
    events, said = await run_form(asked_turn("sesame_score", "借呗利息怎么算", "faq"))
    assert events == [] and said == []


def _domain_part(key: str) -> Dict[str, Any]:
    """One top-level mapping (slots, forms, responses) merged over domain/*.yml."""
    merged: Dict[str, Any] = {}
    for path in sorted((ROOT / "domain").glob("*.yml")):
        merged.update(
            (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get(key) or {}
        )
    return merged


def test_form_parser_and_domain_follow_the_declared_questions() -> None:
    names = [asked.name for asked in ASKED_FACTS]
    # the form asks exactly the declared questions first, in the declared order
    required = _domain_part("forms")["diagnosis_form"]["required_slots"]
    assert required[: len(names)] == names
    domain_slots = _domain_part("slots")
    responses_ = _domain_part("responses")
    for name in names:
        slot = domain_slots[name]
        assert slot["influence_conversation"] is False, name
        assert {"type": "custom"} in slot["mappings"], name  # the action fills it
        assert f"utter_ask_{name}" in responses_, name
    assert domain_slots[RECORD_SLOT]["influence_conversation"] is False
    # the action asks these itself: a response of Rasa's search path would
    # make Rasa ask a second time
    for name in ("step_answer", "resume_choice"):
        assert f"utter_ask_{name}" not in responses_
        assert f"utter_ask_diagnosis_form_{name}" not in responses_


# Not a short reply: the yes/no question reads those as yes or no first.
DONT_KNOW = "这个我也不知道呢"


@pytest.mark.parametrize("asked", ASKED_FACTS, ids=lambda asked: asked.name)
async def test_the_answer_parser_reads_every_declared_question(
    asked: Any, seeded_db_url: str
) -> None:
    events, _ = await run_form(asked_turn(asked.name, DONT_KNOW, "inform"))
    set_ = slots(events)
    assert set_[asked.name] is None and set_["facts_skipped"] == [asked.name]
    assert set_["requested_slot"] != asked.name  # skipped: not asked again
