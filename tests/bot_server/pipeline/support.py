"""What the pipeline tests share: a fake agent, messages, the domain's texts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain

from bot_server.pipeline.inbound import Inbound

ROOT = Path(__file__).resolve().parents[3]
DOMAIN = Domain.load(str(ROOT / "domain"))


class FakeTrackerStore:
    def __init__(self, paused: bool) -> None:
        self.paused = paused

    async def retrieve(self, sender_id: str) -> Any:
        paused = self.paused

        class _Tracker:
            def is_paused(self) -> bool:
                return paused

        return _Tracker()


class FakeAgent:
    """What the pipeline reads of Rasa's agent: domain, nlg, tracker store."""

    def __init__(self, paused: bool = False) -> None:
        self.domain = DOMAIN
        self.nlg = TemplatedNaturalLanguageGenerator(DOMAIN.responses)
        self.tracker_store = FakeTrackerStore(paused)


def response_text(name: str) -> str:
    return str(DOMAIN.responses[name][0]["text"])


def texts(channel: CollectingOutputChannel) -> List[str]:
    return [str(m.get("text")) for m in channel.messages]


def inbound(
    text: Optional[str] = "借呗不见了",
    sender: str = "u1",
    agent: Any = None,
    **kwargs: Any,
) -> Inbound:
    """A message on a collecting channel, as a stage receives it."""
    message = UserMessage(text, CollectingOutputChannel(), sender, **kwargs)
    return Inbound(message, FakeAgent() if agent is None else agent)


async def say(message: UserMessage, text: str) -> None:
    """How Rasa's processor sends a bot message."""
    await message.output_channel.send_response(message.sender_id, {"text": text})


class Passed:
    """The rest of the pipeline after a stage: records what reached it."""

    def __init__(self, reply: Optional[str] = None) -> None:
        self.seen: List[str] = []
        self.reply = reply

    async def __call__(self, inbound: Inbound) -> None:
        self.seen.append(inbound.message.text or "")
        if self.reply is not None:
            await say(inbound.message, self.reply)
