"""The WeCom channel over HTTP: a Sanic app with its blueprint, the fake API behind it.

Requests are real: signed and encrypted as WeCom sends them (devtools/signed.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any, Dict, List

import aiohttp
import jwt
import pytest

from actions.identity import METADATA_KEY, verify
from bot_server.channels.wechat.wecom import WeComInput
from devtools import signed
from devtools.fake_platform import WECOM_SEND, FakePlatform
from devtools.servers import free_port
from devtools.wechat_apps import AGENT_ID, CORP_ID, wecom_crypto
from tests.bot_server.channels.wechat.support import (
    IDENTITY_SECRET,
    USER,
    FakeBot,
    domain,
    make_wecom,
    serve,
)


def text_message(
    content: str, msg_id: str = "9001", user: str = USER, **kwargs: Any
) -> signed.Signed:
    inner = signed.inner_xml(user, CORP_ID, "text", content, msg_id, AGENT_ID, **kwargs)
    return signed.post(
        wecom_crypto(), inner, outer={"ToUserName": CORP_ID, "AgentID": str(AGENT_ID)}
    )


async def send(
    http: aiohttp.ClientSession, webhook: str, request: signed.Signed
) -> tuple[int, str]:
    async with http.post(request.url(webhook), data=request.body.encode()) as response:
        return response.status, await response.text()


def domain_text(name: str) -> str:
    return str(domain().responses[name][0]["text"])


# --- URL verification ------------------------------------------------------------


async def test_the_handshake_answers_the_decrypted_echostr(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    async with serve(make_wecom(platform.base_url), FakeBot()) as webhook:
        request = signed.wecom_handshake(wecom_crypto(), "1616140317555161061")
        async with http.get(request.url(webhook)) as response:
            assert (response.status, await response.text()) == (
                200,
                "1616140317555161061",
            )


async def test_the_handshake_survives_an_unescaped_plus(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    crypto = wecom_crypto()
    request = signed.wecom_handshake(crypto, "echo")
    while "+" not in request.query["echostr"]:
        request = signed.wecom_handshake(crypto, "echo")
    raw_query = "&".join(
        f"{k}={v}" for k, v in request.query.items()
    )  # '+' not escaped
    async with serve(make_wecom(platform.base_url), FakeBot()) as webhook:
        async with http.get(f"{webhook}?{raw_query}") as response:
            assert (response.status, await response.text()) == (200, "echo")


async def test_a_handshake_with_a_bad_signature_is_403(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    request = signed.wecom_handshake(wecom_crypto(), "echo")
    request.query["msg_signature"] = "0" * 40
    async with serve(make_wecom(platform.base_url), FakeBot()) as webhook:
        async with http.get(request.url(webhook)) as response:
            assert response.status == 403
            assert "echo" not in await response.text()


async def test_a_stale_handshake_is_403(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    request = signed.wecom_handshake(
        wecom_crypto(), "echo", timestamp=str(int(time.time()) - 3600)
    )
    async with serve(make_wecom(platform.base_url), FakeBot()) as webhook:
        async with http.get(request.url(webhook)) as response:
            assert response.status == 403


# --- messages -------------------------------------------------------------------


async def test_a_message_is_acknowledged_at_once_and_answered_through_the_api(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    bot = FakeBot(delay_s=2.0)  # a slow bot: the ack must not wait for it
    async with serve(make_wecom(platform.base_url), bot) as webhook:
        started = time.perf_counter()
        status, body = await send(
            http, webhook, text_message("我的支付宝里找不到借呗了")
        )
        ack_s = time.perf_counter() - started
        assert (status, body) == (200, "")
        assert bot.finished == 0, "the acknowledgement waited for the bot"
        assert ack_s < 1.5
        sent = await platform.wait_sent(1)
    assert [s.path for s in sent] == [WECOM_SEND]
    assert sent[0].body == {
        "touser": USER,
        "msgtype": "text",
        "agentid": AGENT_ID,
        "text": {"content": "收到：我的支付宝里找不到借呗了"},
    }
    (message,) = bot.received
    assert message.sender_id == f"wecom_{USER}"
    assert message.input_channel == "wecom"
    assert message.message_id == "9001"
    token = message.metadata[METADATA_KEY]
    assert verify(token, IDENTITY_SECRET) == USER
    claims = jwt.decode(token, IDENTITY_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 300  # minted for this message only
    print(f"\nWeCom ack latency with a 2 s bot: {ack_s * 1000:.1f} ms")


async def test_without_a_secret_no_identity_is_attached(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    bot = FakeBot()
    async with serve(
        make_wecom(platform.base_url, identity_secret=None), bot
    ) as webhook:
        await send(http, webhook, text_message("你好"))
        await platform.wait_sent(1)
    assert bot.received[0].metadata is None


async def test_a_bad_signature_is_403_and_reaches_nobody(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    bot = FakeBot()
    request = text_message("你好")
    request.query["msg_signature"] = "f" * 40
    async with serve(make_wecom(platform.base_url), bot) as webhook:
        assert (await send(http, webhook, request))[0] == 403
    assert bot.received == [] and platform.sent == []


def replace_encrypt(request: signed.Signed, encrypted: str) -> signed.Signed:
    """The same request with another <Encrypt>, correctly signed (only the content is bad)."""
    crypto = wecom_crypto()
    query = dict(request.query)
    query["msg_signature"] = crypto.sign(query["timestamp"], query["nonce"], encrypted)
    return signed.Signed(
        query, f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    )


def other_corp_message() -> signed.Signed:
    other = wecom_crypto(corp_id="ww_other_corp")
    return replace_encrypt(
        text_message("x"), other.encrypt(signed.inner_xml(USER, CORP_ID, content="x"))
    )


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: signed.Signed(text_message("x").query, "<xml><Encrypt>"), "malformed XML"),
        (lambda: signed.Signed(text_message("x").query, "<xml><ToUserName>a</ToUserName></xml>"), "missing Encrypt"),
        (lambda: signed.Signed({}, text_message("x").body), "missing timestamp"),
        (lambda: replace_encrypt(text_message("x"), "@@not-base64@@"), "bad base64"),
        (lambda: replace_encrypt(text_message("x"), "QUJD"), "ciphertext length"),
        (other_corp_message, "wrong receiveid"),
        (lambda: replace_encrypt(text_message("x"), wecom_crypto().encrypt("<xml><MsgType>text</MsgType></xml>")), "missing"),
        (lambda: replace_encrypt(text_message("x"), wecom_crypto().encrypt("not xml")), "malformed XML"),
        (lambda: signed.post(wecom_crypto(), signed.inner_xml(USER, CORP_ID, content="x", agent_id=999)), "wrong AgentID"),
    ],
)  # fmt: skip
async def test_malformed_requests_are_400_with_a_short_reason(
    platform: FakePlatform, http: aiohttp.ClientSession, make: Any, reason: str
) -> None:
    bot = FakeBot()
    async with serve(make_wecom(platform.base_url), bot) as webhook:
        status, body = await send(http, webhook, make())
    assert status == 400
    assert reason in body and len(body) < 80
    assert bot.received == []


async def test_a_redelivered_message_is_acknowledged_and_ignored(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    bot = FakeBot()
    first = text_message("你好", msg_id="777")
    again = text_message(
        "你好", msg_id="777"
    )  # the platform's retry: new nonce/signature
    async with serve(make_wecom(platform.base_url), bot) as webhook:
        assert await send(http, webhook, first) == (200, "")
        assert await send(http, webhook, again) == (200, "")
        assert await send(http, webhook, first) == (
            200,
            "",
        )  # a captured request replayed
        await platform.wait_sent(1)
        await send(http, webhook, text_message("再问一个", msg_id="778"))
        await platform.wait_sent(2)
    assert [m.text for m in bot.received] == ["你好", "再问一个"]


@pytest.mark.parametrize("offset_s", [-360, 360, -86400])
async def test_a_timestamp_far_from_now_is_403(
    platform: FakePlatform, http: aiohttp.ClientSession, offset_s: int
) -> None:
    bot = FakeBot()
    fresh = text_message("你好")
    stale = signed.post(
        wecom_crypto(),
        signed.inner_xml(USER, CORP_ID, content="你好", agent_id=AGENT_ID),
        timestamp=str(int(time.time()) + offset_s),
    )
    async with serve(make_wecom(platform.base_url), bot) as webhook:
        assert (await send(http, webhook, stale))[0] == 403
        assert (await send(http, webhook, fresh))[0] == 200
        await bot.wait_received(1)
    assert [m.text for m in bot.received] == ["你好"]


async def test_unconfigured_answers_503_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    http: aiohttp.ClientSession,
) -> None:
    for name in (
        "WECOM_CORP_ID",
        "WECOM_AGENT_ID",
        "WECOM_SECRET",
        "WECOM_TOKEN",
        "WECOM_AES_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.INFO, logger="bot_server.channels.wechat"):
        channel = WeComInput.from_credentials(None)
    assert "WECOM_CORP_ID" in caplog.text and "503" in caplog.text
    assert isinstance(channel, WeComInput) and not channel.configured
    bot = FakeBot()
    async with serve(channel, bot) as webhook:
        async with http.get(webhook) as response:
            assert response.status == 503
        status, body = await send(http, webhook, text_message("你好"))
        assert status == 503 and "not configured" in body
        async with http.get(webhook.rsplit("/", 1)[0] + "/") as response:
            assert (await response.json()) == {"status": "not configured"}
    assert bot.received == []


async def test_the_send_api_down_is_logged_and_nothing_crashes(
    platform: FakePlatform,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    bot = FakeBot()
    with caplog.at_level(logging.ERROR):
        async with serve(make_wecom(dead), bot) as webhook:
            assert await send(http, webhook, text_message("你好", msg_id="1")) == (
                200,
                "",
            )
            await bot.wait_received(1)
            deadline = time.monotonic() + 5
            while "sending to" not in caplog.text and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            # the channel still takes messages
            assert await send(http, webhook, text_message("在吗", msg_id="2")) == (
                200,
                "",
            )
            await bot.wait_received(2)
    assert "sending to demo_account_frozen failed" in caplog.text
    assert bot.finished == 2


async def test_a_platform_answering_500_is_logged_too(
    platform: FakePlatform,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    platform.http_status = 500
    bot = FakeBot()
    with caplog.at_level(logging.ERROR):
        async with serve(make_wecom(platform.base_url), bot) as webhook:
            await send(http, webhook, text_message("你好"))
            await bot.wait_received(1)
            deadline = time.monotonic() + 5
            while "HTTP 500" not in caplog.text and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
    assert "HTTP 500" in caplog.text


async def test_an_expired_token_is_renewed_and_the_answer_delivered(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    bot = FakeBot()
    async with serve(make_wecom(platform.base_url), bot) as webhook:
        await send(http, webhook, text_message("一", msg_id="1"))
        await platform.wait_sent(1)
        platform.send_errors = [42001]
        await send(http, webhook, text_message("二", msg_id="2"))
        sent = await platform.wait_sent(2)
    assert [s.text for s in sent] == ["收到：一", "收到：二"]
    assert platform.token_fetches == 2


# --- buttons and other message types -----------------------------------------------

STEP = {
    "text": "完成了吗？",
    "buttons": [
        {"title": "完成了", "payload": "/affirm"},
        {"title": "没做成", "payload": "/deny"},
        {"title": "转人工", "payload": "/request_human"},
    ],
}


def step_or_echo(message: Any) -> Dict[str, Any]:
    return (
        dict(STEP, buttons=list(STEP["buttons"]))
        if message.text == "借呗不见了"
        else {"text": f"收到：{message.text}"}
    )


async def test_buttons_become_numbered_lines_and_a_number_is_the_button(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    bot = FakeBot(reply=step_or_echo)
    async with serve(make_wecom(platform.base_url), bot) as webhook:
        await send(http, webhook, text_message("借呗不见了", msg_id="1"))
        await platform.wait_sent(1)
        await send(http, webhook, text_message("１", msg_id="2"))
        await platform.wait_sent(2)
        await send(http, webhook, text_message("1", msg_id="3"))  # no buttons last turn
        sent = await platform.wait_sent(3)
    option = domain_text("utter_channel_button_option")
    lines = [
        option.format(number=n, title=t)
        for n, t in [(1, "完成了"), (2, "没做成"), (3, "转人工")]
    ]
    assert sent[0].text == "\n".join(["完成了吗？", *lines])
    assert lines[0] == "回复 1：完成了"
    assert [m.text for m in bot.received] == ["借呗不见了", "/affirm", "1"]


async def test_other_message_types_get_the_text_only_answer(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    bot = FakeBot()
    image = signed.post(
        wecom_crypto(),
        signed.inner_xml(USER, CORP_ID, "image", msg_id="5", agent_id=AGENT_ID),
    )
    async with serve(make_wecom(platform.base_url), bot) as webhook:
        assert await send(http, webhook, image) == (200, "")
        sent = await platform.wait_sent(1)
    assert [s.text for s in sent] == [domain_text("utter_channel_text_only")]
    assert bot.received == []


async def test_events_are_acknowledged_and_ignored(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    bot = FakeBot()
    event = signed.post(
        wecom_crypto(),
        signed.inner_xml(
            USER, CORP_ID, "event", msg_id=None, agent_id=AGENT_ID, event="enter_agent"
        ),
    )
    async with serve(make_wecom(platform.base_url), bot) as webhook:
        assert await send(http, webhook, event) == (200, "")
        await platform.wait_sent(1, timeout_s=0.5)
    assert bot.received == [] and platform.sent == []


def mutations() -> List[signed.Signed]:
    """Requests broken in many small ways (deterministic)."""
    rng = random.Random(7)
    good = text_message("你好", msg_id="31337")
    found: List[signed.Signed] = []
    for _ in range(40):
        raw = bytearray(good.body.encode())
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        found.append(signed.Signed(good.query, raw.decode("utf-8", "replace")))
    for key in good.query:
        for value in ["", "²", "١٢٣", "x" * 5000, "%00", "0" * 40, "\u2028"]:
            found.append(signed.Signed({**good.query, key: value}, good.body))
    for body in [
        "",
        "<xml/>",
        "<xml><Encrypt/></xml>",
        "<xml><Encrypt>====</Encrypt></xml>",
        "\x00" * 10,
    ]:
        found.append(signed.Signed(good.query, body))
    return found


async def test_broken_requests_never_get_a_500(
    platform: FakePlatform, http: aiohttp.ClientSession
) -> None:
    bot = FakeBot()
    statuses = set()
    async with serve(make_wecom(platform.base_url), bot) as webhook:
        for request in mutations():
            async with http.post(
                request.url(webhook), data=request.body.encode()
            ) as response:
                statuses.add(response.status)
            async with http.get(request.url(webhook)) as response:
                statuses.add(response.status)
    assert statuses <= {200, 400, 403}, statuses
    # a flip in the unsigned outer fields (ToUserName) leaves the message
    # authentic: it is delivered, once (the MsgId is the same)
    assert [m.text for m in bot.received] in ([], ["你好"])
