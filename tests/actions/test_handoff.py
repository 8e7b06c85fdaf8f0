"""The handoff skill: a readable case for a human, the pause."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import ActionHandoff
from actions.services.cases import SCAM_MARKER, case_store, render_case
from devtools.tracker import make_tracker
from tests.actions.support import DOMAIN, responses, slots


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
               "problem_text": "借呗不见了", "diagnosis_unfinished": True},
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
    # a human has the diagnosis now: nothing to offer to resume
    assert slots(result)["diagnosis_unfinished"] is False


async def test_handoff_flags_a_scam_only_from_this_session(seeded_db_url: str) -> None:
    def said(text: str, intent: str) -> Dict[str, Any]:
        return {
            "event": "user",
            "text": text,
            "parse_data": {"intent": {"name": intent}},
        }

    earlier = [said("有人让我共享屏幕", "report_scam"), {"event": "session_started"}]
    now = [said("借呗不见了", "jiebei_entry_missing"), said("转人工", "request_human")]
    # One conversation has one open case: each try is its own conversation.
    for number, (events, flagged) in enumerate(
        [
            (now, False),
            (earlier + now, False),  # a scam of an earlier session is not this case's
            ([now[0], said("客服问我要验证码", "report_scam"), now[1]], True),
        ]
    ):
        result = await ActionHandoff().run(
            CollectingDispatcher(),
            make_tracker(f"conv-h{number}", events=events),
            DOMAIN,
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
