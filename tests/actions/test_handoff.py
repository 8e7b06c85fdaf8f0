"""The handoff skill: a readable case for a human, the pause."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Dict, List
from zoneinfo import ZoneInfo

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


def closed_hours_now() -> str:
    """Service hours that exclude the present moment (in Asia/Shanghai)."""
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    start, end = now + timedelta(hours=2), now + timedelta(hours=3)
    return f"{start:%H}:00-{end:%H}:00"


def user_said(text: str, intent: str = "request_human") -> Dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent}},
        "input_channel": "socketio",
    }


def said_last(sender: str, text: str, **slots: Any) -> Any:
    """A tracker whose latest message is ``text`` (on socket.io).

    latest_message holds the text as the NLU normalised it (half-width
    punctuation), the user event the words as written.
    """
    return make_tracker(
        sender,
        slots=slots,
        latest_message={
            "text": text.replace("，", ","),
            "intent": {"name": "request_human"},
        },
        events=[user_said(text)],
    )


async def test_asking_for_a_person_first_puts_the_complaint_in_the_case(
    seeded_db_url: str,
) -> None:
    tracker = said_last("conv-first", "借呗不见了，我要转人工")
    result = await ActionHandoff().run(CollectingDispatcher(), tracker, DOMAIN)
    case = case_store().case(slots(result)["case_id"])
    assert case["problem"] == "借呗不见了，我要转人工"
    # The diagnosis's own note of the problem comes first.
    noted = said_last("conv-noted", "转人工", problem_text="借呗额度降了")
    result = await ActionHandoff().run(CollectingDispatcher(), noted, DOMAIN)
    assert case_store().case(slots(result)["case_id"])["problem"] == "借呗额度降了"
    # A button's payload is no complaint.
    pressed = said_last("conv-button", "/request_human")
    result = await ActionHandoff().run(CollectingDispatcher(), pressed, DOMAIN)
    assert case_store().case(slots(result)["case_id"])["problem"] is None


async def test_the_user_hears_the_case_and_the_place_in_the_queue(
    seeded_db_url: str,
) -> None:
    first, second = CollectingDispatcher(), CollectingDispatcher()
    one = await ActionHandoff().run(
        first, make_tracker("conv-q1", events=[user_said("转人工")]), DOMAIN
    )
    await ActionHandoff().run(
        second, make_tracker("conv-q2", events=[user_said("人工客服")]), DOMAIN
    )
    [said] = second.messages
    assert said["response"] == "utter_handoff"
    assert said["queue_position"] == 2 and said["case_id"]
    opened = case_store().open_case_of("conv-q1")
    assert opened["case_id"] == slots(one)["case_id"]
    assert opened["channel"] == "socketio"


async def test_the_expected_wait_once_cases_were_claimed(seeded_db_url: str) -> None:
    import sqlalchemy as sa

    from actions.services.cases import status_table

    store = case_store()
    claimed = store.open_case("conv-old", {"problem": "x"})
    with store._engine.begin() as connection:  # an agent took it after 4 min
        row = connection.execute(
            sa.select(status_table.c.created_at).where(
                status_table.c.case_id == claimed
            )
        ).scalar_one()
        connection.execute(
            status_table.update()
            .where(status_table.c.case_id == claimed)
            .values(status="active", claimed_at=row + timedelta(minutes=4))
        )
    dispatcher = CollectingDispatcher()
    await ActionHandoff().run(
        dispatcher, make_tracker("conv-new", events=[user_said("转人工")]), DOMAIN
    )
    [said] = dispatcher.messages
    assert said["response"] == "utter_handoff_with_wait"
    assert (said["queue_position"], said["wait_minutes"]) == (1, 4)


async def test_outside_hours_the_user_hears_when_agents_are_back(
    seeded_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hours = closed_hours_now()
    monkeypatch.setenv("DESK_SERVICE_HOURS", hours)
    dispatcher = CollectingDispatcher()
    result = await ActionHandoff().run(
        dispatcher, make_tracker("conv-night", events=[user_said("转人工")]), DOMAIN
    )
    [said] = dispatcher.messages
    assert said["response"] == "utter_handoff_closed"
    assert said["service_hours"] == hours
    assert said["opens_time"] == hours[:5]
    # The case is kept, waiting, and the conversation paused.
    assert case_store().open_case_of("conv-night")["status"] == "waiting"
    assert {"event": "pause"} in [{"event": e["event"]} for e in result]
