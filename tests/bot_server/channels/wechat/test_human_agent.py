"""A human agent's message on WeCom and the Official Account: labelled with the
agent's name, sent through the platform API (the fake platform behind it)."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from bot_server.channels.wechat.base import WeChatStyleInput
from devtools.fake_platform import WECHAT_SEND, WECOM_SEND, FakePlatform
from tests.bot_server.channels.wechat.support import (
    USER,
    domain,
    make_wechat,
    make_wecom,
)

CHANNELS = [
    pytest.param(make_wecom, "wecom_", WECOM_SEND, id="wecom"),
    pytest.param(make_wechat, "wechat_mp_", WECHAT_SEND, id="official_account"),
]


def label(name: str) -> str:
    text = str(domain().responses["utter_channel_human_agent_label"][0]["text"])
    return text.format(name=name)


@pytest.mark.parametrize(("make", "prefix", "path"), CHANNELS)
async def test_an_agents_message_starts_with_the_agents_name(
    platform: FakePlatform,
    make: Callable[..., WeChatStyleInput],
    prefix: str,
    path: str,
) -> None:
    channel = make(platform.base_url)
    assert channel.sender_prefix == prefix
    output = channel.get_output_channel()
    assert output is not None
    # What Rasa hands the channel for the bot event the desk appended.
    await output.send_response(
        prefix + USER,
        {
            "text": "您好，我是小安，请问入口是什么时候不见的？",
            "human_agent": {"id": "agent1", "name": "小安"},
        },
    )
    await output.send_response(prefix + USER, {"text": "我是借呗助手。"})
    sent = await platform.wait_sent(2)
    await channel.drain()
    assert [s.path for s in sent] == [path, path]
    assert label("小安") == "【人工客服 小安】"
    assert [s.text for s in sent] == [
        "【人工客服 小安】\n您好，我是小安，请问入口是什么时候不见的？",
        "我是借呗助手。",
    ]


async def test_without_the_domain_response_the_same_label(
    platform: FakePlatform,
) -> None:
    class NoDomain:
        domain = None

    channel = make_wecom(platform.base_url, agent=lambda: NoDomain())
    output = channel.get_output_channel()
    assert output is not None
    message: Any = {"text": "好的", "human_agent": {"name": "小宁"}}
    await output.send_response("wecom_" + USER, message)
    [sent] = await platform.wait_sent(1)
    await channel.drain()
    assert sent.text == "【人工客服 小宁】\n好的"
