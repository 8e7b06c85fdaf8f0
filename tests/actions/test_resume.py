"""A user back at an unfinished diagnosis: where we left off, go on or start over."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from actions.common.facts import RECORD_SLOT
from tests.actions.support import (
    ACTIVATED,
    REJECTED,
    asked_turn,
    asks,
    fixture_record,
    run_form,
    slots,
)

# What a new session carries over from a diagnosis left at its first fix step
# (Rasa keeps the slots, not the form).
LEFT_AT_A_STEP: Dict[str, Any] = {
    "facts_source": "store",
    "account_id": "demo_account_frozen",
    RECORD_SLOT: fixture_record("demo_account_frozen"),
    "findings": ["account_frozen"],
    "current_finding": "account_frozen",
    "steps_tried": [],
    "diagnosis_unfinished": True,
}
# ... and from one left while the facts were asked.
LEFT_AT_A_FACT: Dict[str, Any] = {
    "facts_source": "user",
    "account_status": "normal",
    "diagnosis_unfinished": True,
}


STEP_AGAIN = ["utter_ask_step_again", "utter_fix_account_frozen", "utter_ask_step_done"]
# (what the user says, its intent, the slot asked, what came before and the
# slots carried over) -> (what the bot says, the slot it asks next)
TURNS = {
    "a greeting hears where we left off": (
        ("你好", "greet", "step_answer", ACTIVATED, LEFT_AT_A_STEP),
        (["utter_resume_fix", "utter_cause_account_frozen", "utter_resume_question"],
         "resume_choice"),
    ),
    "继续 shows the step again": (
        ("继续", "affirm", "resume_choice", None, LEFT_AT_A_STEP),
        (STEP_AGAIN, "step_answer"),
    ),
    "继续 needs no offer": (
        ("继续吧", "affirm", "step_answer", ACTIVATED, LEFT_AT_A_STEP),
        (STEP_AGAIN, "step_answer"),
    ),
    "going on at the facts, Rasa asks the next one": (
        ("好的", "affirm", "resume_choice", None, LEFT_AT_A_FACT),
        ([], "real_name_verified"),
    ),
    "unclear: the question again": (
        ("嗯？", "nlu_fallback", "resume_choice", None, LEFT_AT_A_STEP),
        (["utter_resume_question"], "resume_choice"),
    ),
    "after a digression: the question again": (
        ("借呗利息怎么算", "faq", "resume_choice", REJECTED, LEFT_AT_A_STEP),
        (["utter_resume_question"], "resume_choice"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", TURNS)
async def test_a_turn_at_the_offer(case: str) -> None:
    (text, intent, asked, after, left), expected = TURNS[case]
    tracker = asked_turn(asked, text, intent, "demo_account_frozen", after, **left)
    assert await asks(tracker) == expected


async def test_the_offer_says_how_far_we_got() -> None:
    from rasa_sdk.executor import CollectingDispatcher

    from actions.common.turn import Turn
    from actions.resume import offer

    two = {**LEFT_AT_A_STEP, "findings": ["poor_credit_record", "low_sesame_score"],
           "current_finding": "low_sesame_score",
           "steps_tried": [{"code": "poor_credit_record", "answer": "acknowledged"}]}  # fmt: skip
    turn = Turn(
        asked_turn("step_answer", "你好", "greet", **two), CollectingDispatcher()
    )
    offer(turn)
    assert turn.dispatcher.messages[0]["count"] == 2
    assert turn.dispatcher.messages[0]["step"] == 2


async def test_start_over_looks_the_account_up_afresh(seeded_db_url: str) -> None:
    events, said = await run_form(
        asked_turn("resume_choice", "重新开始", "deny", "demo_account_frozen",
                   **LEFT_AT_A_STEP)
    )  # fmt: skip
    assert said[:2] == ["utter_start_over", "utter_lookup_found"]
    assert said[-2:] == ["utter_fix_account_frozen", "utter_ask_step_done"]
    assert slots(events)["requested_slot"] == "step_answer"


async def test_a_new_complaint_starts_afresh_without_an_offer(
    seeded_db_url: str,
) -> None:
    _, said = await run_form(
        asked_turn("step_answer", "我的支付宝里找不到借呗了", "jiebei_entry_missing",
                   "demo_account_frozen", after=ACTIVATED, **LEFT_AT_A_STEP)
    )  # fmt: skip
    assert "utter_resume_question" not in said
    assert "utter_fix_alt_account_frozen" not in said
    assert said[:2] == ["utter_situation_entry_missing", "utter_lookup_found"]


async def test_a_digression_is_left_to_the_rules() -> None:
    events, said = await run_form(
        asked_turn("resume_choice", "借呗利息怎么算", "faq", **LEFT_AT_A_STEP)
    )
    assert events == [] and said == []


async def test_never_mind_pauses_the_diagnosis_unfinished() -> None:
    for asked, left in (("resume_choice", LEFT_AT_A_STEP), ("real_name_verified",
                                                            LEFT_AT_A_FACT)):  # fmt: skip
        events, said = await run_form(asked_turn(asked, "算了", "deny", **left))
        assert said == ["utter_diagnosis_paused"]
        assert slots(events) == {"diagnosis_unfinished": True, "requested_slot": None}
