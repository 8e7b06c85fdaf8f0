"""Token cache and send calls (bot_server/channels/wechat/api.py) against the fake platform."""

from __future__ import annotations

import asyncio
import time
from typing import List, Tuple

import pytest

from bot_server.channels.wechat.api import (
    AccessTokenCache,
    ApiError,
    OfficialAccountApi,
    TokenFetcher,
    WeComApi,
    split_text,
)
from devtools.fake_platform import WECHAT_SEND, WECOM_SEND, FakePlatform
from devtools.servers import free_port
from devtools.wechat_apps import AGENT_ID, APP_ID, CORP_ID


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting_fetcher(expires_in: int = 7200) -> Tuple[List[str], TokenFetcher]:
    issued: List[str] = []

    async def fetch() -> Tuple[str, int]:
        await asyncio.sleep(0.01)
        issued.append(f"t{len(issued) + 1}")
        return issued[-1], expires_in

    return issued, fetch


async def test_the_token_is_cached_until_shortly_before_expiry() -> None:
    clock = Clock()
    issued, fetch = counting_fetcher(7200)
    cache = AccessTokenCache(fetch, clock=clock, margin_s=300)
    assert await cache.get() == "t1"
    clock.now += 6899
    assert await cache.get() == "t1"
    clock.now += 1
    assert await cache.get() == "t2"
    assert issued == ["t1", "t2"]


async def test_a_short_lived_token_is_kept_for_half_its_life() -> None:
    clock = Clock()
    issued, fetch = counting_fetcher(100)  # shorter than the margin
    cache = AccessTokenCache(fetch, clock=clock, margin_s=300)
    await cache.get()
    clock.now += 49
    await cache.get()
    clock.now += 1
    await cache.get()
    assert issued == ["t1", "t2"]


async def test_concurrent_callers_share_one_fetch() -> None:
    issued, fetch = counting_fetcher()
    cache = AccessTokenCache(fetch)
    tokens = await asyncio.gather(*(cache.get() for _ in range(20)))
    assert set(tokens) == {"t1"} and issued == ["t1"]


async def test_invalidate_forgets_only_the_current_token() -> None:
    _, fetch = counting_fetcher()
    cache = AccessTokenCache(fetch)
    first = await cache.get()
    cache.invalidate("some older token")
    assert await cache.get() == first
    cache.invalidate(first)
    assert await cache.get() == "t2"


# --- against the fake platform ------------------------------------------------


def wecom(platform: FakePlatform, timeout_s: float = 2.0) -> WeComApi:
    return WeComApi(CORP_ID, "wecom-secret", AGENT_ID, platform.base_url, timeout_s)


def wechat(platform: FakePlatform) -> OfficialAccountApi:
    return OfficialAccountApi(APP_ID, "wechat-secret", platform.base_url)


async def test_wecom_sends_a_text_as_the_app(platform: FakePlatform) -> None:
    api = wecom(platform)
    await api.send_text("zhangsan", "你好")
    await api.send_text("zhangsan", "再见")
    await api.close()
    assert [s.path for s in platform.sent] == [WECOM_SEND, WECOM_SEND]
    assert platform.sent[0].body == {
        "touser": "zhangsan",
        "msgtype": "text",
        "agentid": AGENT_ID,
        "text": {"content": "你好"},
    }
    assert platform.token_fetches == 1  # cached


async def test_official_account_sends_a_customer_service_text(
    platform: FakePlatform,
) -> None:
    api = wechat(platform)
    await api.send_text("openid-1", "你好")
    await api.close()
    assert platform.sent[0].path == WECHAT_SEND
    assert platform.sent[0].body == {
        "touser": "openid-1",
        "msgtype": "text",
        "text": {"content": "你好"},
    }


async def test_processes_of_one_official_account_share_its_token(
    platform: FakePlatform,
) -> None:
    """Workers and replicas each cache a token: fetching one (stable_token,
    normal mode) must not invalidate another process's."""
    first, second = wechat(platform), wechat(platform)
    for index in range(3):
        await first.send_text("openid-1", f"first {index}")
        await second.send_text("openid-1", f"second {index}")
    await first.close()
    await second.close()
    assert len(platform.sent) == 6
    assert platform.token_fetches == 2  # one each, never a refusal and a refetch
    assert await first.tokens.get() == await second.tokens.get()


@pytest.mark.parametrize("errcode", [40014, 42001, 40001])
async def test_a_refused_token_is_fetched_again_once(
    platform: FakePlatform, errcode: int
) -> None:
    api = wecom(platform)
    await api.send_text("u", "one")
    platform.send_errors = [errcode]
    await api.send_text("u", "two")
    await api.close()
    assert [s.text for s in platform.sent] == ["one", "two"]
    assert platform.token_fetches == 2


async def test_a_second_refusal_is_an_error(platform: FakePlatform) -> None:
    api = wecom(platform)
    platform.send_errors = [42001, 42001]
    with pytest.raises(ApiError) as raised:
        await api.send_text("u", "x")
    await api.close()
    assert raised.value.errcode == 42001
    assert platform.sent == []


async def test_other_errcodes_are_not_retried(platform: FakePlatform) -> None:
    api = wecom(platform)
    platform.send_errors = [45009]  # rate limit
    with pytest.raises(ApiError, match="45009"):
        await api.send_text("u", "x")
    await api.close()
    assert platform.token_fetches == 1


async def test_wrong_credentials_name_the_errcode_not_the_secret(
    platform: FakePlatform,
) -> None:
    api = WeComApi(CORP_ID, "wrong-secret", AGENT_ID, platform.base_url)
    with pytest.raises(ApiError) as raised:
        await api.send_text("u", "x")
    await api.close()
    assert raised.value.errcode == 40001
    assert "wrong-secret" not in str(raised.value)


async def test_http_errors_and_unreachable_servers_are_api_errors(
    platform: FakePlatform,
) -> None:
    platform.http_status = 502
    api = wecom(platform)
    with pytest.raises(ApiError, match="HTTP 502"):
        await api.send_text("u", "x")
    await api.close()
    closed = WeComApi(
        CORP_ID, "wecom-secret", AGENT_ID, f"http://127.0.0.1:{free_port()}"
    )
    with pytest.raises(ApiError) as raised:
        await closed.send_text("u", "x")
    await closed.close()
    assert "wecom-secret" not in str(raised.value)


async def test_every_call_has_a_timeout(platform: FakePlatform) -> None:
    platform.delay_s = 3.0
    api = wecom(platform, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(ApiError, match="TimeoutError"):
        await api.send_text("u", "x")
    await api.close()
    assert time.monotonic() - started < 2.0


def test_long_texts_are_split_within_the_byte_limit() -> None:
    assert split_text("短消息") == ["短消息"]
    assert split_text("") == []
    text = "第一行\n" + "借" * 1000 + "\n" + "呗" * 1000
    # cut at the last line end within the limit, else at a character boundary
    assert split_text(text, limit=2048) == [
        "第一行", "借" * 682, "借" * 318, "呗" * 682, "呗" * 318,
    ]  # fmt: skip
    pieces = split_text("借" * 1500)
    assert [len(p.encode()) for p in pieces] == [2046, 2046, 408]
