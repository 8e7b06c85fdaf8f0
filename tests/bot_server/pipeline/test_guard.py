"""The guard stage: every user message gets an answer (bot_server/pipeline/guard.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Optional

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

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


async def test_silence_in_a_paused_conversation_gets_the_waiting_message() -> None:
    async def handler(message: UserMessage) -> None:
        return None

    channel = await send(handler, FakeAgent(paused=True))
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
    for name in (guard.TROUBLE_RESPONSE, guard.PAUSED_RESPONSE):
        assert response_text(name)
