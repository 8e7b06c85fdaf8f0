"""The diagnosis's second half: the walk one finding at a time, re-check, wrap-up, rating."""

from __future__ import annotations

from typing import Any

import pytest

from actions.common.facts import RECORD_SLOT
from actions.diagnosis.facts import parse_facts
from actions.fixes import answer_current_step, rate, show_step, wrap_up
from actions.services.accounts import SqlAccountStore
from actions.services.cases import case_store
from tests.actions.support import (
    ACTIVATED,
    REJECTED,
    asked_turn,
    asks,
    fixture_record,
    responses,
    run_form,
    slots,
    turn_of,
    user,
)


def test_a_step_is_shown_whole_and_repeated_short() -> None:
    first = turn_of(slots={"current_finding": "no_bank_card"})
    show_step(first)
    assert responses(first.dispatcher) == [
        "utter_fix_no_bank_card",
        "utter_ask_step_done",
    ]
    again = turn_of(slots={"current_finding": "no_bank_card"})
    show_step(again, again=True)
    assert responses(again.dispatcher) == [
        "utter_ask_step_again",
        "utter_fix_no_bank_card",
        "utter_ask_step_done",
    ]
    waiting = turn_of(slots={"current_finding": "frequent_credit_inquiries"})
    show_step(waiting)
    assert responses(waiting.dispatcher)[-1] == "utter_ask_step_ack"
    assert waiting.dispatcher.messages[0]["wait_days"] == 30


def walking(account_id: str, finding: str, **more: Any) -> dict[str, Any]:
    """The slots of a store-identified walk at `finding`, nothing tried yet."""
    return {"facts_source": "store", "account_id": account_id,
            RECORD_SLOT: fixture_record(account_id), "current_finding": finding,
            "findings": [finding], "steps_tried": [],
            "requested_slot": "step_answer", **more}  # fmt: skip


async def answer(
    account: str, finding: str, text: str, intent: str
) -> tuple[list[str], dict[str, Any]]:
    """What answering `text` at `finding` says and sets."""
    turn = turn_of(
        account, slots=walking(account, finding), latest_message=user(text, intent)
    )
    await answer_current_step(turn, text)
    return responses(turn.dispatcher), slots(turn.events())


async def test_done_is_rechecked_against_the_store(seeded_db_url: str) -> None:
    # The user binds a card while talking to us: the store now shows it.
    bound = parse_facts({**fixture_record("demo_healthy"), "bank_cards": 1})
    SqlAccountStore(seeded_db_url).put("demo_no_bank_card", bound)
    said, result = await answer("demo_no_bank_card", "no_bank_card", "绑好了", "affirm")
    assert said == ["utter_recheck_confirmed"]
    assert result["current_finding"] is None
    assert result["steps_tried"] == [
        {"code": "no_bank_card", "answer": "done", "recheck": "confirmed"}
    ]
    # the fresher record is kept for the turns that follow
    assert result[RECORD_SLOT] == bound.to_dict()


@pytest.mark.parametrize(
    ("account", "finding", "text", "intent"),
    [
        # "cannot": nothing to re-check
        ("demo_no_bank_card", "no_bank_card", "做不到", "deny"),
        # time-based: acknowledged, not done
        ("demo_multi_credit", "low_sesame_score", "好的", "affirm"),
    ],
)
async def test_only_done_reads_the_store_again(
    monkeypatch: pytest.MonkeyPatch, account: str, finding: str, text: str, intent: str
) -> None:
    def no_store(self: SqlAccountStore, account_id: str) -> Any:
        raise AssertionError("the kept record should have been used")

    monkeypatch.setattr(SqlAccountStore, "get", no_store)
    _, result = await answer(account, finding, text, intent)
    assert result["steps_tried"][0]["code"] == finding
    assert RECORD_SLOT not in result


@pytest.mark.parametrize("intent", ["affirm", "inform"])
async def test_card_bound_is_done_whatever_the_label(
    seeded_db_url: str, intent: str
) -> None:
    # "卡绑好了" is a judgement call between affirm and inform for the NLU; the
    # form's own reading of the words decides, so the walk goes on either way.
    SqlAccountStore(seeded_db_url).put(
        "demo_no_bank_card",
        parse_facts({**fixture_record("demo_healthy"), "bank_cards": 1}),
    )
    events, said = await run_form(
        asked_turn("step_answer", "卡绑好了", intent, "demo_no_bank_card",
                   **walking("demo_no_bank_card", "no_bank_card"))
    )  # fmt: skip
    assert said[0] == "utter_recheck_confirmed"
    assert slots(events)["steps_tried"] == [
        {"code": "no_bank_card", "answer": "done", "recheck": "confirmed"}
    ]


async def test_done_but_store_not_updated_is_pending_and_walk_moves_on(
    seeded_db_url: str,
) -> None:
    said, result = await answer(
        "demo_multi_new_user", "account_not_activated", "弄好了", "affirm"
    )
    assert said == ["utter_recheck_pending"]
    assert result["current_finding"] == "real_name_incomplete"


async def test_one_call_answers_the_step_and_shows_the_next(
    seeded_db_url: str,
) -> None:
    walk = walking("demo_multi_new_user", "account_not_activated")
    tracker = asked_turn(
        "step_answer", "弄好了", "affirm", "demo_multi_new_user", **walk
    )
    said = [
        "utter_recheck_pending",
        "utter_fix_real_name_incomplete",
        "utter_ask_step_done",
    ]
    assert await asks(tracker) == (said, "step_answer")


async def test_the_last_step_brings_the_wrap_up_and_the_rating_question(
    seeded_db_url: str,
) -> None:
    events, said = await run_form(
        asked_turn("step_answer", "做不到", "deny", "demo_no_bank_card",
                   **walking("demo_no_bank_card", "no_bank_card"))
    )  # fmt: skip
    assert said == ["utter_fix_alt_no_bank_card", "utter_wrapup_pending"]
    set_ = slots(events)
    assert set_["requested_slot"] == "satisfaction"  # Rasa asks it
    assert set_["diagnosis_unfinished"] is False
    assert case_store().outcome("demo_no_bank_card")["outcome"] == "resolved_by_bot"


async def test_unclear_gives_a_hint_and_the_step_again() -> None:
    events, said = await run_form(
        asked_turn("step_answer", "?", "nlu_fallback", current_finding="no_bank_card")
    )
    assert said == [
        "utter_step_answer_hint",
        "utter_ask_step_again",
        "utter_fix_no_bank_card",
        "utter_ask_step_done",
    ]
    assert slots(events) == {"step_answer": None, "requested_slot": "step_answer"}


async def test_cannot_gives_the_alternative() -> None:
    turn = turn_of(
        slots={"facts_source": "user", "bank_cards": 0,
               "current_finding": "no_bank_card", "requested_slot": "step_answer"},
        latest_message=user("做不到", "deny"),
    )  # fmt: skip
    assert await answer_current_step(turn, "做不到")
    assert responses(turn.dispatcher) == ["utter_fix_alt_no_bank_card"]
    result = slots(turn.events())
    assert result["steps_tried"][0]["answer"] == "cannot"
    assert result["current_finding"] is None


async def test_a_digression_mid_step_is_left_to_the_rules_then_the_step_resumes() -> (
    None
):
    events, said = await run_form(
        asked_turn(
            "step_answer", "借呗利息怎么算", "faq", current_finding="no_bank_card"
        )
    )
    assert events == [] and said == []
    events, said = await run_form(
        asked_turn("step_answer", "借呗利息怎么算", "faq", after=REJECTED,
                   current_finding="no_bank_card")
    )  # fmt: skip
    assert said == [
        "utter_ask_step_again",
        "utter_fix_no_bank_card",
        "utter_ask_step_done",
    ]
    assert slots(events) == {"requested_slot": "step_answer"}


async def test_a_greeting_mid_step_is_no_answer() -> None:
    events, said = await run_form(
        asked_turn("step_answer", "你好", "greet", current_finding="no_bank_card")
    )
    assert events == [] and said == []  # the greet rule answers; the step resumes


async def test_a_fact_told_at_a_step_is_not_taken_for_done() -> None:
    events, said = await run_form(
        asked_turn("step_answer", "我芝麻分六百多", "inform",
                   current_finding="no_bank_card")
    )  # fmt: skip
    assert said[0] == "utter_step_answer_hint"
    assert "steps_tried" not in slots(events)


async def test_wrap_up_records_the_outcome_and_the_rating(seeded_db_url: str) -> None:
    turn = turn_of(
        "conv-wrap",
        slots={"findings": ["frequent_credit_inquiries"],
               "steps_tried": [{"code": "frequent_credit_inquiries", "answer": "acknowledged"}]},
    )  # fmt: skip
    await wrap_up(turn)
    assert responses(turn.dispatcher) == ["utter_wrapup_pending"]
    assert turn.dispatcher.messages[0]["wait_days"] == 30
    assert case_store().outcome("conv-wrap")["outcome"] == "resolved_by_bot"
    events, said = await run_form(
        asked_turn("satisfaction", "五星", "inform", "conv-wrap")
    )
    assert said == ["utter_rating_thanks"]
    assert slots(events) == {"satisfaction": 5, "requested_slot": None}
    assert case_store().outcome("conv-wrap")["rating"] == 5
    _, said = await run_form(asked_turn("satisfaction", "你好", "greet", "conv-wrap"))
    assert said == []  # a greeting is no 4-star rating


async def test_a_new_complaint_mid_step_starts_over_in_the_same_call(
    seeded_db_url: str,
) -> None:
    events, said = await run_form(
        asked_turn("step_answer", "我的支付宝里找不到借呗了", "jiebei_entry_missing",
                   "demo_account_frozen",
                   **walking("demo_account_frozen", "account_frozen"))
    )  # fmt: skip
    assert said[:2] == ["utter_situation_entry_missing", "utter_lookup_found"]
    assert "utter_fix_alt_account_frozen" not in said
    assert said[-2:] == ["utter_fix_account_frozen", "utter_ask_step_done"]
    assert slots(events)["requested_slot"] == "step_answer"


async def test_rating_gives_up_politely_after_two_unclear_answers() -> None:
    first = turn_of(slots={"requested_slot": "satisfaction"})
    assert not await rate(first, "看情况")
    assert slots(first.events()) == {"satisfaction": None, "rating_unclear": 1}
    assert responses(first.dispatcher) == ["utter_rating_unclear"]
    second = turn_of(slots={"requested_slot": "satisfaction", "rating_unclear": 1})
    assert await rate(second, "哈哈")
    assert slots(second.events()) == {"satisfaction": "skipped", "rating_unclear": None}
    assert responses(second.dispatcher) == ["utter_rating_given_up"]


async def test_the_opening_message_is_no_answer_to_anything(
    seeded_db_url: str,
) -> None:
    # The form starts on the complaint; old slots may say a step or the rating
    # was asked, but the words are the complaint, not an answer.
    events, said = await run_form(
        asked_turn("satisfaction", "我的支付宝里找不到借呗了", "jiebei_entry_missing",
                   "visitor", after=ACTIVATED, current_finding="no_bank_card")
    )  # fmt: skip
    assert said == ["utter_situation_entry_missing", "utter_ask_intro"]
    assert slots(events)["requested_slot"] == "account_status"
