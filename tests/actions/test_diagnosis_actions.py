"""The diagnosis actions with a tracker factory and a real (temporary) store."""

from __future__ import annotations

import time
from typing import Any, Dict, List

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.diagnose import ActionDiagnose, ActionStartDiagnosis, ValidateFactsForm
from actions.diagnosis.facts import parse_facts
from actions.fixes import (
    ActionAskStepDone,
    ActionWrapUp,
    ValidateFixForm,
    ValidateRatingForm,
)
from actions.handoff import ActionAbandonDiagnosis, ActionHandoff
from actions.services.accounts import SqlAccountStore
from actions.services.cases import SCAM_MARKER, case_store, render_case
from devtools.tracker import make_tracker

DOMAIN: Dict[str, Any] = {}


def responses(dispatcher: CollectingDispatcher) -> List[str]:
    return [m["response"] for m in dispatcher.messages]


def slots(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def user(text: str, intent: str) -> Dict[str, Any]:
    return {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": []}


async def test_identified_account_is_looked_up(seeded_db_url: str) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        "demo_account_frozen", latest_message=user("借呗没了", "jiebei_entry_missing")
    )
    events = await ActionStartDiagnosis().run(dispatcher, tracker, DOMAIN)
    assert responses(dispatcher) == [
        "utter_situation_entry_missing",
        "utter_lookup_found",
    ]
    assert dispatcher.messages[1]["account_id"] == "demo_account_frozen"
    set_ = slots(events)
    assert set_["facts_source"] == "store" and set_["account_status"] == "frozen"
    assert set_["problem_text"] == "借呗没了" and set_["sesame_score"] == 712


async def test_unknown_sender_is_asked(seeded_db_url: str) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("someone", latest_message=user("额度没了", "jiebei_quota"))
    events = await ActionStartDiagnosis().run(dispatcher, tracker, DOMAIN)
    assert responses(dispatcher) == ["utter_situation_quota", "utter_ask_intro"]
    assert slots(events)["facts_source"] == "user"
    assert "sesame_score" not in slots(events)  # nothing filled: the form asks


async def test_store_down_falls_back_to_asking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCOUNT_DB_URL", "postgresql://postgres@127.0.0.1:1/none")
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        "demo_account_frozen", latest_message=user("借呗没了", "jiebei_entry_missing")
    )
    events = await ActionStartDiagnosis().run(dispatcher, tracker, DOMAIN)
    assert responses(dispatcher)[-1] == "utter_lookup_unavailable"
    assert slots(events)["facts_source"] == "unavailable"


async def test_slow_store_times_out(
    monkeypatch: pytest.MonkeyPatch, seeded_db_url: str
) -> None:
    monkeypatch.setenv("ACCOUNT_LOOKUP_TIMEOUT", "0.2")

    def slow_get(self: SqlAccountStore, account_id: str) -> Any:
        time.sleep(1.5)
        raise AssertionError("should have timed out")

    monkeypatch.setattr(SqlAccountStore, "get", slow_get)
    dispatcher = CollectingDispatcher()
    started = time.monotonic()
    events = await ActionStartDiagnosis().run(
        dispatcher,
        make_tracker("demo_healthy", latest_message=user("x", "jiebei_quota")),
        DOMAIN,
    )
    assert time.monotonic() - started < 1.2
    assert slots(events)["facts_source"] == "unavailable"


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
async def test_facts_form_reads_free_answers(
    slot: str, text: str, expected: Any
) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(latest_message=user(text, "inform"))
    result = ValidateFactsForm.read(slot, text, dispatcher, tracker)
    assert result == {slot: expected}
    assert dispatcher.messages == []


async def test_facts_form_skips_unknown_and_reasks_unclear() -> None:
    form = ValidateFactsForm()
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        latest_message=user("不知道", "deny"),
        slots={"facts_skipped": ["bank_cards"], "requested_slot": "sesame_score"},
    )
    skipped = form.read("sesame_score", "不知道", dispatcher, tracker)
    assert skipped == {
        "sesame_score": None,
        "facts_skipped": ["bank_cards", "sesame_score"],
    }
    unclear = form.read("sesame_score", "很高吧", dispatcher, tracker)
    assert unclear == {"sesame_score": None}
    assert responses(dispatcher) == ["utter_answer_unclear"]
    required = await form.required_slots(
        ["bank_cards", "sesame_score"], dispatcher, tracker, DOMAIN
    )
    assert required == ["sesame_score"]


async def test_diagnose_identified_account(seeded_db_url: str) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        "demo_multi_credit",
        slots={"facts_source": "store", "account_id": "demo_multi_credit"},
    )
    events = await ActionDiagnose().run(dispatcher, tracker, DOMAIN)
    said = responses(dispatcher)
    assert said[0] == "utter_diagnosis_intro" and dispatcher.messages[0]["count"] == 4
    assert said[1:5] == [
        "utter_cause_poor_credit_record",
        "utter_cause_frequent_credit_inquiries",
        "utter_cause_high_debt_ratio",
        "utter_cause_low_sesame_score",
    ]
    assert slots(events)["current_finding"] == "poor_credit_record"


async def test_diagnose_anonymous_answers_and_no_cause(seeded_db_url: str) -> None:
    dispatcher = CollectingDispatcher()
    answers = {"facts_source": "user", "account_status": "normal", "real_name_verified": True,
               "bank_cards": 2, "sesame_score": 700, "overdue_count": 0,
               "credit_inquiries_last_30d": 0}  # fmt: skip
    events = await ActionDiagnose().run(
        dispatcher, make_tracker("anon", slots=answers), DOMAIN
    )
    assert responses(dispatcher) == ["utter_no_single_cause"]
    assert slots(events)["current_finding"] is None
    partial = CollectingDispatcher()
    await ActionDiagnose().run(
        partial, make_tracker("anon", slots={"facts_source": "user"}), DOMAIN
    )
    assert responses(partial) == ["utter_no_single_cause_partial"]


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


async def test_done_is_rechecked_against_the_store(seeded_db_url: str) -> None:
    # The user binds a card while talking to us: the store now shows it.
    SqlAccountStore(seeded_db_url).put(
        "demo_no_bank_card", parse_facts({**_healthy(), "bank_cards": 1})
    )
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        "demo_no_bank_card",
        slots={"facts_source": "store", "account_id": "demo_no_bank_card",
               "current_finding": "no_bank_card", "steps_tried": [],
               "requested_slot": "step_done"},
        latest_message=user("绑好了", "affirm"),
    )  # fmt: skip
    result = await ValidateFixForm().validate_step_done(
        "绑好了", dispatcher, tracker, DOMAIN
    )
    assert responses(dispatcher) == ["utter_recheck_confirmed"]
    assert result["current_finding"] is None
    assert result["steps_tried"] == [
        {"code": "no_bank_card", "answer": "done", "recheck": "confirmed"}
    ]


@pytest.mark.parametrize("intent", ["affirm", "inform"])
async def test_the_fix_form_reads_card_bound_as_done_whatever_the_label(
    seeded_db_url: str, intent: str
) -> None:
    # "卡绑好了" is a judgement call between affirm and inform for the NLU; the
    # form's own reading of the words decides, so the walk goes on either way.
    SqlAccountStore(seeded_db_url).put(
        "demo_no_bank_card", parse_facts({**_healthy(), "bank_cards": 1})
    )
    slots = {"facts_source": "store", "account_id": "demo_no_bank_card",
             "current_finding": "no_bank_card", "steps_tried": [],
             "requested_slot": "step_done"}  # fmt: skip
    tracker = make_tracker(
        "demo_no_bank_card", slots=slots, latest_message=user("卡绑好了", intent)
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
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        "demo_multi_new_user",
        slots={"facts_source": "store", "account_id": "demo_multi_new_user",
               "current_finding": "account_not_activated", "steps_tried": [],
               "requested_slot": "step_done"},
        latest_message=user("弄好了", "affirm"),
    )  # fmt: skip
    result = await ValidateFixForm().validate_step_done(
        "弄好了", dispatcher, tracker, DOMAIN
    )
    assert responses(dispatcher) == ["utter_recheck_pending"]
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


async def test_handoff_stores_a_readable_case_and_pauses(seeded_db_url: str) -> None:
    events: List[Dict[str, Any]] = [
        {
            "event": "user",
            "text": "借呗不见了",
            "parse_data": {"intent": {"name": "jiebei_entry_missing"}},
        },
        {"event": "bot", "text": "..."},
        {
            "event": "user",
            "text": "有人让我交钱开通",
            "parse_data": {"intent": {"name": "report_scam"}},
        },
        {
            "event": "user",
            "text": "转人工",
            "parse_data": {"intent": {"name": "request_human"}},
        },
    ]
    tracker = make_tracker(
        "demo_account_frozen",
        slots={"account_id": "demo_account_frozen", "findings": ["account_frozen"],
               "steps_tried": [{"code": "account_frozen", "answer": "cannot"}],
               "problem_text": "借呗不见了"},
        events=events,
    )  # fmt: skip
    dispatcher = CollectingDispatcher()
    result = await ActionHandoff().run(dispatcher, tracker, DOMAIN)
    assert responses(dispatcher) == ["utter_handoff"]
    case_id = slots(result)["case_id"]
    assert {"event": "pause"} in [{"event": e["event"]} for e in result]
    case = case_store().case(case_id)
    assert case["account_id"] == "demo_account_frozen"
    assert case["causes"] == ["account_frozen"]
    assert case["user_words"] == ["借呗不见了", "有人让我交钱开通", "转人工"]
    assert case["scam_reported"] is True
    assert render_case(case or {}).splitlines()[0] == SCAM_MARKER
    assert case_store().outcome("demo_account_frozen")["outcome"] == "handed_off"


async def test_handoff_flags_a_scam_only_from_this_session(seeded_db_url: str) -> None:
    def said(text: str, intent: str) -> Dict[str, Any]:
        return {
            "event": "user",
            "text": text,
            "parse_data": {"intent": {"name": intent}},
        }

    earlier = [said("有人让我共享屏幕", "report_scam"), {"event": "session_started"}]
    now = [said("借呗不见了", "jiebei_entry_missing"), said("转人工", "request_human")]
    for events, flagged in [
        (now, False),
        (earlier + now, False),  # a scam of an earlier session is not this case's
        ([now[0], said("客服问我要验证码", "report_scam"), now[1]], True),
    ]:
        result = await ActionHandoff().run(
            CollectingDispatcher(), make_tracker("conv-h", events=events), DOMAIN
        )
        case = case_store().case(slots(result)["case_id"])
        assert case["scam_reported"] is flagged
        assert (SCAM_MARKER in render_case(case or {})) is flagged
    assert case_store().summary()["scam_flagged_cases"] == 1


async def test_handoff_without_a_case_store_says_how_to_reach_a_human(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACCOUNT_DB_URL", "postgresql://postgres@127.0.0.1:1/none")
    dispatcher = CollectingDispatcher()
    result = await ActionHandoff().run(dispatcher, make_tracker("x"), DOMAIN)
    assert responses(dispatcher) == ["utter_handoff_failed"] and result == []


async def test_abandon_is_counted(seeded_db_url: str) -> None:
    tracker = make_tracker("conv-gone", slots={"findings": ["low_activity"]})
    await ActionAbandonDiagnosis().run(CollectingDispatcher(), tracker, DOMAIN)
    assert case_store().outcome("conv-gone")["outcome"] == "abandoned"


def _healthy() -> Dict[str, Any]:
    from actions.services.accounts import load_fixtures

    return load_fixtures()["demo_healthy"].to_dict()


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


async def test_facts_form_runs_extraction_and_validation_from_its_table() -> None:
    # What rasa_sdk calls: the answer to the asked-for slot is read and typed.
    tracker = make_tracker(
        slots={"requested_slot": "sesame_score", "facts_source": "user"},
        latest_message=user("大概六百八吧", "inform"),
        events=[{"event": "user", "text": "大概六百八吧"}],
    )
    events = await ValidateFactsForm().run(CollectingDispatcher(), tracker, DOMAIN)
    assert {"event": "slot", "name": "sesame_score", "value": 680} in [
        {k: e.get(k) for k in ("event", "name", "value")} for e in events
    ]
