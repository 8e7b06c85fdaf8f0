"""The order of the stages (bot_server/pipeline/compose.py), as a channel runs them."""

from __future__ import annotations

import logging
from typing import Any, List

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from bot_server.pipeline import compose, gate, guard, ratelimit
from bot_server.pipeline.inbound import Inbound, Next
from tests.bot_server.pipeline.support import FakeAgent, response_text, say, texts


def test_the_stages_are_rate_limit_gate_guard() -> None:
    assert compose.STAGES == (ratelimit.limit_rate, gate.apply_gate, guard.guard)


async def test_chain_runs_the_stages_in_order_and_a_stage_can_stop_a_message() -> None:
    calls: List[str] = []

    def stage(name: str, hand_on: bool = True) -> Any:
        async def run(inbound: Inbound, then: Next) -> None:
            calls.append(name)
            if hand_on:
                await then(inbound)

        return run

    async def last(inbound: Inbound) -> None:
        calls.append("last")

    message = Inbound(UserMessage("x", CollectingOutputChannel(), "u"), None)
    await compose.chain([stage("a"), stage("b")], last)(message)
    assert calls == ["a", "b", "last"]
    calls.clear()
    await compose.chain([stage("a", hand_on=False), stage("b")], last)(message)
    assert calls == ["a"]


class Rasa:
    """Rasa's on_new_message behind the pipeline: records, answers or fails."""

    def __init__(self, reply: Any = "好的") -> None:
        self.seen: List[str] = []
        self.reply = reply
        self.agents = 0
        self.handler = compose.inbound_handler(self.handle, self.agent)

    def agent(self) -> FakeAgent:
        self.agents += 1
        return FakeAgent()

    async def handle(self, message: UserMessage) -> None:
        self.seen.append(message.text or "")
        if isinstance(self.reply, Exception):
            raise self.reply
        await say(message, self.reply)

    async def send(self, text: str, sender: str) -> List[str]:
        channel = CollectingOutputChannel()
        await self.handler(UserMessage(text, channel, sender, input_channel="rest"))
        return texts(channel)


async def test_the_rate_limit_comes_before_the_gate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RATE_LIMIT", "1/minute")
    rasa = Rasa()
    assert await rasa.send("你好", "u1") == ["好的"]
    # Empty, and over the limit: the limit answers, the gate never runs.
    assert await rasa.send("   ", "u1") == [
        response_text(ratelimit.RATE_LIMITED_RESPONSE)
    ]
    assert rasa.seen == ["你好"]


async def test_the_gate_comes_before_the_guard_and_rasa() -> None:
    rasa = Rasa(RuntimeError("tracker store down"))
    answered = await rasa.send("我手机13812345678", "u2")
    # Rasa saw the masked text; the notice came first, the guard's apology last.
    assert rasa.seen == ["我手机138****5678"]
    assert answered == [
        response_text(gate.PII_RESPONSE),
        response_text(guard.TROUBLE_RESPONSE),
    ]


async def test_the_guard_sees_only_what_rasa_sent_not_the_notices(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Silence from Rasa after a notice is still silence: the apology follows."""

    class Silent(Rasa):
        async def handle(self, message: UserMessage) -> None:
            self.seen.append(message.text or "")

    with caplog.at_level(logging.ERROR):
        answered = await Silent().send("验证码是482913", "u3")
    assert answered == [
        response_text(gate.SECRET_RESPONSE),
        response_text(guard.TROUBLE_RESPONSE),
    ]
    assert "the bot sent nothing" in caplog.text


async def test_the_agent_is_read_for_every_message() -> None:
    rasa = Rasa()
    await rasa.send("一", "u4")
    await rasa.send("二", "u4")
    assert rasa.agents == 2  # a model loaded in between would be used at once
