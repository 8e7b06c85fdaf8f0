"""The fixes skill: the walk one finding at a time, the re-check, wrap-up, rating."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.common.facts import RECORD_SLOT
from actions.diagnose import ValidateFactsForm
from actions.diagnosis.facts import parse_facts
from actions.fixes import (
    ActionAskStepDone,
    ActionWrapUp,
    ValidateFixForm,
    ValidateRatingForm,
)
from actions.services.accounts import SqlAccountStore
from actions.services.cases import case_store
from devtools.tracker import make_tracker
from tests.actions.support import DOMAIN, fixture_record, responses, slots, user


async def test_ask_step_shows_steps_once_then_a_reminder() -> None:
    tracker = make_tracker(slots={"current_finding": "no_bank_card"})
    first = CollectingDispatcher()
    events = await ActionAskStepDone().run(first, tracker, DOMAIN)
    assert responses(first) == ["utter_fix_no_bank_card", "utter_ask_step_done"]
    again = CollectingDispatcher()
    tracker = make_tracker(slots={"current_finding": "no_bank_card", **slots(events)})
    await ActionAskStepDone().run(again, tracker, DOMAIN)
    assert responses(again) == [
        "utter_ask_step_again",
        "utter_fix_no_bank_card",
        "utter_ask_step_done",
    ]
    waiting = CollectingDispatcher()
    await ActionAskStepDone().run(
        waiting,
        make_tracker(slots={"current_finding": "frequent_credit_inquiries"}),
        DOMAIN,
    )
    assert responses(waiting)[-1] == "utter_ask_step_ack"
    assert waiting.messages[0]["wait_days"] == 30


def walking(account_id: str, finding: str, **more: Any) -> dict[str, Any]:
    """The slots of a store-identified walk at `finding`, nothing tried yet."""
    return {"facts_source": "store", "account_id": account_id,
            RECORD_SLOT: fixture_record(account_id), "current_finding": finding,
            "steps_tried": [], "requested_slot": "step_done", **more}  # fmt: skip


async def answer(
    account: str, finding: str, text: str, intent: str
) -> tuple[list[str], dict[str, Any]]:
    """What the fix form says and sets when the user answers `text` at `finding`."""
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        account, slots=walking(account, finding), latest_message=user(text, intent)
    )
    result = await ValidateFixForm().validate_step_done(
        text, dispatcher, tracker, DOMAIN
    )
    return responses(dispatcher), result


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
async def test_the_fix_form_reads_card_bound_as_done_whatever_the_label(
    seeded_db_url: str, intent: str
) -> None:
    # "卡绑好了" is a judgement call between affirm and inform for the NLU; the
    # form's own reading of the words decides, so the walk goes on either way.
    SqlAccountStore(seeded_db_url).put(
        "demo_no_bank_card",
        parse_facts({**fixture_record("demo_healthy"), "bank_cards": 1}),
    )
    tracker = make_tracker(
        "demo_no_bank_card",
        slots=walking("demo_no_bank_card", "no_bank_card"),
        latest_message=user("卡绑好了", intent),
    )
    form = ValidateFixForm()
    extracted = await form.extract_step_done(CollectingDispatcher(), tracker, DOMAIN)
    assert extracted["step_done"]
    dispatcher = CollectingDispatcher()
    result = await form.validate_step_done(
        extracted["step_done"], dispatcher, tracker, DOMAIN
    )
    assert responses(dispatcher) == ["utter_recheck_confirmed"]
    assert result["steps_tried"] == [
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


async def test_cannot_gives_the_alternative_and_unclear_asks_again() -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        slots={
            "facts_source": "user",
            "bank_cards": 0,
            "current_finding": "no_bank_card",
            "requested_slot": "step_done",
        },
        latest_message=user("做不到", "deny"),
    )
    result = await ValidateFixForm().validate_step_done(
        "做不到", dispatcher, tracker, DOMAIN
    )
    assert responses(dispatcher) == ["utter_fix_alt_no_bank_card"]
    assert (
        result["steps_tried"][0]["answer"] == "cannot"
        and result["current_finding"] is None
    )
    unclear = CollectingDispatcher()
    tracker = make_tracker(
        slots={"current_finding": "no_bank_card", "requested_slot": "step_done"},
        latest_message=user("?", "nlu_fallback"),
    )
    assert await ValidateFixForm().validate_step_done(
        "?", unclear, tracker, DOMAIN
    ) == {"step_done": None}
    assert responses(unclear) == ["utter_step_answer_hint"]


async def test_wrap_up_records_the_outcome(seeded_db_url: str) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        "conv-wrap",
        slots={"findings": ["frequent_credit_inquiries"],
               "steps_tried": [{"code": "frequent_credit_inquiries", "answer": "acknowledged"}]},
    )  # fmt: skip
    await ActionWrapUp().run(dispatcher, tracker, DOMAIN)
    assert responses(dispatcher) == ["utter_wrapup_pending"]
    assert dispatcher.messages[0]["wait_days"] == 30
    assert case_store().outcome("conv-wrap")["outcome"] == "resolved_by_bot"
    rating = CollectingDispatcher()
    tracker = make_tracker("conv-wrap", slots={"requested_slot": "satisfaction"})
    result = await ValidateRatingForm().validate_satisfaction(
        "五星", rating, tracker, DOMAIN
    )
    assert result == {"satisfaction": 5}
    assert case_store().outcome("conv-wrap")["rating"] == 5


async def test_a_new_complaint_is_not_read_as_a_fix_step_answer() -> None:
    # Nothing is extracted: the form rejects the turn and a rule starts over.
    tracker = make_tracker(
        "demo_account_frozen",
        slots={"current_finding": "account_frozen", "requested_slot": "step_done"},
        latest_message=user("我的支付宝里找不到借呗了", "jiebei_entry_missing"),
    )
    assert (
        await ValidateFixForm().extract_step_done(
            CollectingDispatcher(), tracker, DOMAIN
        )
        == {}
    )


async def test_rating_form_gives_up_politely_after_two_unclear_answers() -> None:
    form = ValidateRatingForm()
    first = CollectingDispatcher()
    asked = make_tracker(slots={"requested_slot": "satisfaction"})
    result = await form.validate_satisfaction("看情况", first, asked, DOMAIN)
    assert result == {"satisfaction": None, "rating_unclear": 1}
    assert responses(first) == ["utter_rating_unclear"]
    second = CollectingDispatcher()
    again = make_tracker(slots={"requested_slot": "satisfaction", "rating_unclear": 1})
    result = await form.validate_satisfaction("哈哈", second, again, DOMAIN)
    assert result == {"satisfaction": "skipped", "rating_unclear": None}
    assert responses(second) == ["utter_rating_given_up"]


async def test_text_picked_up_when_a_form_starts_is_not_an_answer() -> None:
    # Rasa offers the opening message to a form's slots when the form starts.
    dispatcher = CollectingDispatcher()
    opening = user("我的支付宝里找不到借呗了", "jiebei_entry_missing")
    tracker = make_tracker(
        slots={"current_finding": "no_bank_card"}, latest_message=opening
    )
    assert await ValidateFixForm().validate_step_done(
        opening["text"], dispatcher, tracker, DOMAIN
    ) == {"step_done": None}
    assert await ValidateRatingForm().validate_satisfaction(
        opening["text"], dispatcher, tracker, DOMAIN
    ) == {"satisfaction": None}
    assert ValidateFactsForm.read(
        "sesame_score", opening["text"], dispatcher, tracker
    ) == {"sesame_score": None}
    assert dispatcher.messages == []
