"""Every channel answers through the pipeline and renders with the one renderer.

The REST channel is served as `rasa run` serves it, so the agent the pipeline
uses is the app's (bot_server/pipeline/inbound.py, AppAgent).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage

from bot_server.channels.rest import GuardedRestInput
from bot_server.channels.socketio import BAD_MESSAGE_RESPONSE, GuardedSocketIOInput
from bot_server.channels.wechat.base import BUTTON_OPTION_RESPONSE, TEXT_ONLY_RESPONSE
from bot_server.pipeline import replies
from bot_server.pipeline.guard import TROUBLE_RESPONSE
from devtools import signed
from devtools.fake_platform import FakePlatform
from devtools.wechat_apps import AGENT_ID, CORP_ID, wecom_crypto
from tests.bot_server.channels.support import served_like_rasa
from tests.bot_server.channels.wechat.support import USER, FakeBot, make_wecom, serve
from tests.bot_server.pipeline.support import FakeAgent, response_text


class Spy:
    """Stands in for replies.render: records what is rendered, renders nothing."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, str]] = []

    async def __call__(
        self, agent: Any, response: str, sender_id: str, channel: str, **values: Any
    ) -> Optional[Dict[str, Any]]:
        self.calls.append((response, channel))
        return None


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    recorder = Spy()
    monkeypatch.setattr(replies, "render", recorder)
    return recorder


class FailingAgent(FakeAgent):
    """Rasa's agent with the tracker store down: the guard must answer."""

    async def handle_message(self, message: UserMessage) -> None:
        raise RuntimeError("tracker store down")


async def rest_reply(http: aiohttp.ClientSession, agent: Any) -> List[Dict[str, Any]]:
    async with served_like_rasa([GuardedRestInput()], agent) as webhooks:
        async with http.post(
            f"{webhooks}/rest/webhook", json={"sender": "u1", "message": "你好"}
        ) as response:
            assert response.status == 200
            return list(await response.json())


async def test_rest_answers_with_the_agent_of_the_app_that_serves_it(
    http: aiohttp.ClientSession,
) -> None:
    [reply] = await rest_reply(http, FailingAgent())
    assert reply["text"] == response_text(TROUBLE_RESPONSE)  # the domain's, not ours
    assert reply["buttons"][0]["title"] == "转人工"


async def test_rest_renders_through_the_one_renderer(
    http: aiohttp.ClientSession, spy: Spy
) -> None:
    assert await rest_reply(http, FailingAgent()) == [
        {"recipient_id": "u1", "text": replies.LAST_RESORT_TEXT}
    ]
    # Rasa's REST channel answers through its CollectingOutputChannel.
    assert spy.calls == [(TROUBLE_RESPONSE, "collector")]


async def test_socketio_renders_through_the_one_renderer(spy: Spy) -> None:
    channel = GuardedSocketIOInput.from_credentials({"session_persistence": True})

    async def silent(message: UserMessage) -> None:
        return None

    channel.blueprint(silent)
    sio = channel.sio
    emitted: List[Any] = []

    async def emit(event: str, data: Any = None, **_: Any) -> None:
        emitted.append(data)

    sio.emit = emit
    handle = sio.handlers["/"]["user_uttered"]
    await handle("sid-1", "not an object")
    await handle("sid-1", {"message": "你好", "session_id": "s1"})
    assert spy.calls == [
        (BAD_MESSAGE_RESPONSE, "socketio"),
        (TROUBLE_RESPONSE, "socketio"),
    ]
    assert [d["text"] for d in emitted] == [replies.LAST_RESORT_TEXT] * 2


async def test_wechat_channels_render_through_the_one_renderer(
    platform: FakePlatform, http: aiohttp.ClientSession, spy: Spy
) -> None:
    def with_buttons(message: UserMessage) -> Dict[str, Any]:
        return {"text": "完成了吗？", "buttons": [{"title": "完成了", "payload": "/a"}]}

    text = signed.post(
        wecom_crypto(),
        signed.inner_xml(USER, CORP_ID, "text", "你好", "1", AGENT_ID),
    )
    image = signed.post(
        wecom_crypto(),
        signed.inner_xml(USER, CORP_ID, "image", msg_id="2", agent_id=AGENT_ID),
    )
    async with serve(make_wecom(platform.base_url), FakeBot(with_buttons)) as webhook:
        for request in (text, image):
            async with http.post(
                request.url(webhook), data=request.body.encode()
            ) as response:
                assert response.status == 200
        sent = await platform.wait_sent(1)
    assert [s.text for s in sent] == ["完成了吗？\n1. 完成了"]  # the fallback line
    assert sorted(spy.calls) == [
        (BUTTON_OPTION_RESPONSE, "wecom"),
        (TEXT_ONLY_RESPONSE, "wecom"),
    ]
