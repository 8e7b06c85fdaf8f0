"""The guard stage: every user message gets an answer (bot_server/pipeline/guard.py)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Awaitable, Callable, Optional
from zoneinfo import ZoneInfo

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from actions.services.cases import CaseStore
from bot_server.pipeline import guard, replies
from bot_server.pipeline.inbound import Inbound
from tests.bot_server.pipeline.support import (
    FakeAgent,
    inbound,
    response_text,
    say,
    texts,
)

Handler = Callable[[UserMessage], Awaitable[None]]


def trouble_text() -> str:
    return response_text(guard.TROUBLE_RESPONSE)


async def send(
    handler: Handler, agent: Optional[FakeAgent] = None, sender: str = "u1"
) -> CollectingOutputChannel:
    """One message through the guard, ``handler`` standing in for Rasa."""
    message = inbound(sender=sender, agent=agent)

    async def then(passed: Inbound) -> None:
        await handler(passed.message)

    await guard.guard(message, then)
    return message.channel


def processor_failure(action: str = "action_start_diagnosis") -> None:
    """What Rasa's processor logs when the action server is down."""
    logging.getLogger(guard.PROCESSOR_LOGGER).error(
        f"Encountered an exception while running action '{action}'."
        "Bot will continue, but the actions events are lost."
    )


async def test_a_normal_reply_is_left_alone() -> None:
    async def handler(message: UserMessage) -> None:
        await say(message, "你好")

    channel = await send(handler)
    assert texts(channel) == ["你好"]


async def test_a_failed_custom_action_adds_the_apology_with_the_human_offer() -> None:
    async def handler(message: UserMessage) -> None:
        await say(message, "我查一下")
        processor_failure()

    channel = await send(handler)
    assert texts(channel) == ["我查一下", trouble_text()]
    assert "人工" in trouble_text()
    assert channel.messages[-1]["buttons"][0]["title"] == "转人工"


async def test_an_exception_in_processing_is_answered_not_raised() -> None:
    async def handler(message: UserMessage) -> None:
        raise RuntimeError("tracker store down")

    channel = await send(handler)
    assert texts(channel) == [trouble_text()]


async def test_a_slow_reply_is_answered_at_the_deadline_and_the_work_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLY_DEADLINE_SECONDS", "0.2")
    finished = asyncio.Event()

    async def handler(message: UserMessage) -> None:
        await asyncio.sleep(0.6)
        finished.set()

    channel = await send(handler)
    assert texts(channel) == [trouble_text()]
    assert not finished.is_set()
    await asyncio.wait_for(finished.wait(), 2)  # not cancelled


async def test_silence_in_a_paused_conversation_gets_the_waiting_message(
    case_db: CaseStore,
) -> None:
    async def handler(message: UserMessage) -> None:
        return None

    channel = await send(handler, FakeAgent(paused=True))
    assert texts(channel) == [response_text(guard.PAUSED_RESPONSE)]


@pytest.fixture
def case_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CaseStore:
    """An empty case store of its own, where the guard reads it."""
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    monkeypatch.setenv("ACCOUNT_DB_URL", url)
    monkeypatch.delenv("CASE_DB_URL", raising=False)
    monkeypatch.delenv("DESK_SERVICE_HOURS", raising=False)
    return CaseStore(url)


async def silent(message: UserMessage) -> None:
    """Rasa in a paused conversation: the message is stored, nothing said."""


async def test_while_the_case_waits_the_user_hears_the_place_in_the_queue(
    case_db: CaseStore,
) -> None:
    case_db.open_case("someone_else", {"problem": "x"})
    case_db.open_case("u1", {"problem": "借呗不见了"}, channel="socketio")
    channel = await send(silent, FakeAgent(paused=True))
    assert texts(channel) == [
        response_text("utter_handoff_queue").format(queue_position=2)
    ]


async def test_outside_hours_the_waiting_user_hears_when_agents_are_back(
    case_db: CaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    opens = now + timedelta(hours=2)
    hours = f"{opens:%H}:00-{opens + timedelta(hours=1):%H}:00"
    monkeypatch.setenv("DESK_SERVICE_HOURS", hours)
    case_db.open_case("u1", {"problem": "借呗不见了"})
    channel = await send(silent, FakeAgent(paused=True))
    [text] = texts(channel)
    assert f"每天 {hours}" in text and f"{opens:%H}:00 上线" in text


async def test_once_an_agent_has_the_case_the_bot_says_nothing(
    case_db: CaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    from actions.services.cases import status_table

    case_id = case_db.open_case("u1", {"problem": "借呗不见了"})
    with case_db._engine.begin() as connection:
        connection.execute(
            status_table.update()
            .where(status_table.c.case_id == case_id)
            .values(status="active", agent_id="agent1")
        )
    with caplog.at_level(logging.WARNING):
        channel = await send(silent, FakeAgent(paused=True))
    assert texts(channel) == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_without_an_open_case_the_plain_waiting_message(
    case_db: CaseStore,
) -> None:
    case_db.open_case("another_conversation", {"problem": "x"})
    channel = await send(silent, FakeAgent(paused=True))
    assert texts(channel) == [response_text(guard.PAUSED_RESPONSE)]


async def test_with_the_case_store_down_the_plain_waiting_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACCOUNT_DB_URL", "postgresql://postgres@127.0.0.1:1/none")
    channel = await send(silent, FakeAgent(paused=True))
    assert texts(channel) == [response_text(guard.PAUSED_RESPONSE)]


async def test_other_silence_gets_the_apology() -> None:
    async def handler(message: UserMessage) -> None:
        return None

    channel = await send(handler, FakeAgent(paused=False))
    assert texts(channel) == [trouble_text()]


async def test_a_failure_in_one_conversation_does_not_touch_another() -> None:
    async def handler(message: UserMessage) -> None:
        await asyncio.sleep(0.05)
        if message.sender_id == "broken":
            processor_failure()
        await asyncio.sleep(0.05)
        await say(message, "好的")

    broken, fine = await asyncio.gather(
        send(handler, sender="broken"), send(handler, sender="fine")
    )
    assert texts(broken) == ["好的", trouble_text()]
    assert texts(fine) == ["好的"]


async def test_without_a_loaded_domain_the_last_resort_text_is_sent() -> None:
    channel = CollectingOutputChannel()

    async def then(passed: Inbound) -> None:
        raise RuntimeError("boom")

    await guard.guard(Inbound(UserMessage("hi", channel, "u2"), None), then)
    assert texts(channel) == [replies.LAST_RESORT_TEXT]


def test_the_failure_message_is_the_one_the_pinned_rasa_processor_logs() -> None:
    import inspect

    import rasa.core.processor

    source = inspect.getsource(rasa.core.processor.MessageProcessor._run_action)
    assert f'f"{guard.ACTION_FAILURE_PREFIX} ' in source
    assert rasa.core.processor.logger.name == guard.PROCESSOR_LOGGER


def test_the_guards_responses_are_in_the_domain() -> None:
    for name in (
        guard.TROUBLE_RESPONSE,
        guard.PAUSED_RESPONSE,
        *guard.QUEUE_RESPONSES.values(),
    ):
        assert response_text(name)
