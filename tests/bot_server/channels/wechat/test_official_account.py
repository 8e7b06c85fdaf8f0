"""The Official Account channel (safe mode) over HTTP, with the fake API behind it."""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
import pytest

from actions.identity import METADATA_KEY, verify
from bot_server.channels.wechat.official_account import OfficialAccountInput
from devtools import signed
from devtools.fake_platform import WECHAT_SEND, FakePlatform
from devtools.wechat_apps import APP_ID, wechat_crypto
from tests.bot_server.channels.wechat.support import (
    IDENTITY_SECRET,
    USER,
    FakeBot,
    domain,
    make_wechat,
    serve,
)

OPENID = USER  # the fixture account id stands in for a follower's openid


def text_message(
    content: str, msg_id: str = "5001", openid: str = OPENID, **query: str
) -> signed.Signed:
    inner = signed.inner_xml(openid, "gh_test", "text", content, msg_id)
    extra = {"openid": openid, "encrypt_type": "aes", **query}
    return signed.post(
        wechat_crypto(), inner, outer={"ToUserName": "gh_test"}, extra_query=extra
    )


async def send(
    http: aiohttp.ClientSession, webhook: str, request: signed.Signed
) -> tuple[int, str]:
    async with http.post(request.url(webhook), data=request.body.encode()) as response:
        return response.status, await response.text()


async def test_the_handshake_echoes_echostr(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    async with serve(make_wechat(platform.base_url), FakeBot()) as webhook:
        request = signed.mp_handshake(wechat_crypto(), "8231498123")
        async with http.get(request.url(webhook)) as response:
            assert (response.status, await response.text()) == (200, "8231498123")
        request.query["signature"] = "0" * 40
        async with http.get(request.url(webhook)) as response:
            assert response.status == 403


async def test_a_message_is_acknowledged_with_success_and_answered_by_customer_service(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    bot = FakeBot(delay_s=2.0)
    async with serve(make_wechat(platform.base_url), bot) as webhook:
        started = time.perf_counter()
        assert await send(http, webhook, text_message("借呗咋没了")) == (200, "success")
        ack_s = time.perf_counter() - started
        assert bot.finished == 0 and ack_s < 1.5
        sent = await platform.wait_sent(1)
    assert [s.path for s in sent] == [WECHAT_SEND]
    assert sent[0].body == {
        "touser": OPENID,
        "msgtype": "text",
        "text": {"content": "收到：借呗咋没了"},
    }
    (message,) = bot.received
    assert message.sender_id == f"wechat_mp_{OPENID}"
    assert message.input_channel == "wechat_mp"
    assert verify(message.metadata[METADATA_KEY], IDENTITY_SECRET) == OPENID
    print(f"\nOfficial Account ack latency with a 2 s bot: {ack_s * 1000:.1f} ms")


def other_app_message() -> signed.Signed:
    inner = signed.inner_xml(OPENID, "gh_test", "text", "x", "1")
    return signed.post(
        wechat_crypto(app_id="wx_other_app"), inner, extra_query={"openid": OPENID}
    )


@pytest.mark.parametrize(
    "make, status, reason",
    [
        # plain mode (no encryption) is not accepted
        (lambda: signed.Signed(text_message("x").query, signed.inner_xml(OPENID, "gh_test", content="x")), 400, "missing Encrypt"),
        (lambda: signed.Signed(text_message("x").query, "<xml>"), 400, "malformed XML"),
        (other_app_message, 400, "wrong receiveid"),
        (lambda: signed.Signed({**text_message("x").query, "msg_signature": "a" * 40}, text_message("x").body), 403, "bad signature"),
    ],
)  # fmt: skip
async def test_refused_requests(
    platform: FakePlatform,
    http: aiohttp.ClientSession,
    make: Any,
    status: int,
    reason: str,
) -> None:
    bot = FakeBot()
    async with serve(make_wechat(platform.base_url), bot) as webhook:
        answer = await send(http, webhook, make())
    assert answer[0] == status and reason in answer[1]
    assert bot.received == []


async def test_an_openid_in_the_url_must_be_the_senders(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    bot = FakeBot()
    request = text_message("x", msg_id="9")
    request.query["openid"] = "someone_else"  # not part of the signature
    async with serve(make_wechat(platform.base_url), bot) as webhook:
        assert await send(http, webhook, request) == (
            400,
            "openid does not match FromUserName",
        )
    assert bot.received == []


async def test_a_redelivered_message_is_answered_once(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    bot = FakeBot()
    async with serve(make_wechat(platform.base_url), bot) as webhook:
        for _ in range(3):
            assert await send(http, webhook, text_message("你好", msg_id="42")) == (
                200,
                "success",
            )
        await platform.wait_sent(1)
        await platform.wait_sent(2, timeout_s=0.5)
    assert len(bot.received) == 1 and len(platform.sent) == 1


async def test_a_stale_message_is_403(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    bot = FakeBot()
    inner = signed.inner_xml(OPENID, "gh_test", "text", "x", "1")
    stale = signed.post(wechat_crypto(), inner, timestamp=str(int(time.time()) - 600))
    async with serve(make_wechat(platform.base_url), bot) as webhook:
        assert (await send(http, webhook, stale))[0] == 403
    assert bot.received == []


async def test_a_subscribe_event_is_ignored_and_a_voice_message_gets_the_text_only_answer(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    bot = FakeBot()
    event = signed.post(
        wechat_crypto(),
        signed.inner_xml(OPENID, "gh_test", "event", msg_id=None, event="subscribe"),
    )
    voice = signed.post(
        wechat_crypto(), signed.inner_xml(OPENID, "gh_test", "voice", msg_id="77")
    )
    async with serve(make_wechat(platform.base_url), bot) as webhook:
        assert await send(http, webhook, event) == (200, "success")
        assert await send(http, webhook, voice) == (200, "success")
        sent = await platform.wait_sent(1)
    assert [s.text for s in sent] == [
        domain().responses["utter_channel_text_only"][0]["text"]
    ]
    assert bot.received == []


async def test_unconfigured_answers_503(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    http: aiohttp.ClientSession,
) -> None:
    for name in (
        "WECHAT_APP_ID",
        "WECHAT_APP_SECRET",
        "WECHAT_TOKEN",
        "WECHAT_AES_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.INFO, logger="bot_server.channels.wechat"):
        channel = OfficialAccountInput.from_credentials(None)
    assert "WECHAT_APP_ID" in caplog.text and not channel.configured
    async with serve(channel, FakeBot()) as webhook:
        async with http.get(webhook) as response:
            assert response.status == 503
        assert (await send(http, webhook, text_message("x")))[0] == 503


def test_the_app_id_is_the_receive_id() -> None:
    assert wechat_crypto().receive_id == APP_ID
