"""What the channel tests share: settings, a fake agent and bot, a served channel."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Dict, List, Optional

from rasa.core.channels.channel import UserMessage
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain

from bot_server.channels.wechat.api import OfficialAccountApi, WeComApi
from bot_server.channels.wechat.base import WeChatStyleInput
from bot_server.channels.wechat.official_account import OfficialAccountInput
from bot_server.channels.wechat.wecom import WeComInput
from devtools.wechat_apps import AGENT_ID, APP_ID, CORP_ID, wechat_crypto, wecom_crypto
from tests.bot_server.channels.support import new_app, running

ROOT = Path(__file__).resolve().parents[4]
IDENTITY_SECRET = "s" * 40
USER = "demo_account_frozen"

_DOMAIN: Optional[Domain] = None


def domain() -> Domain:
    global _DOMAIN
    if _DOMAIN is None:
        _DOMAIN = Domain.load(str(ROOT / "domain"))
    return _DOMAIN


class FakeAgent:
    """What the channel and the guard read of Rasa's agent."""

    def __init__(self) -> None:
        self.domain = domain()
        self.nlg = TemplatedNaturalLanguageGenerator(self.domain.responses)
        self.tracker_store = None


def make_wecom(base: str, **kwargs: Any) -> WeComInput:
    api = WeComApi(CORP_ID, "wecom-secret", AGENT_ID, base_url=base, timeout_s=2)
    kwargs.setdefault("identity_secret", IDENTITY_SECRET)
    kwargs.setdefault("agent", FakeAgent)
    return WeComInput(wecom_crypto(), api, **kwargs)


def make_wechat(base: str, **kwargs: Any) -> OfficialAccountInput:
    api = OfficialAccountApi(APP_ID, "wechat-secret", base_url=base, timeout_s=2)
    kwargs.setdefault("identity_secret", IDENTITY_SECRET)
    kwargs.setdefault("agent", FakeAgent)
    return OfficialAccountInput(wechat_crypto(), api, **kwargs)


Reply = Callable[[UserMessage], Dict[str, Any]]


@dataclass
class FakeBot:
    """Stands in for Rasa's on_new_message: records, waits, answers."""

    reply: Reply = field(default=lambda m: {"text": f"收到：{m.text}"})
    delay_s: float = 0.0
    received: List[UserMessage] = field(default_factory=list)
    finished: int = 0

    async def __call__(self, message: UserMessage) -> None:
        self.received.append(message)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        await message.output_channel.send_response(
            message.sender_id, self.reply(message)
        )
        self.finished += 1

    async def wait_received(self, count: int, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)


@asynccontextmanager
async def serve(channel: WeChatStyleInput, bot: FakeBot) -> AsyncIterator[str]:
    """The channel's blueprint on a Sanic app on a free port; yields the webhook URL."""
    app = new_app("channel_test")
    prefix = f"/webhooks/{channel.name()}"
    app.blueprint(channel.blueprint(bot), url_prefix=prefix)
    async with running(app) as url:
        yield f"{url}{prefix}/webhook"
