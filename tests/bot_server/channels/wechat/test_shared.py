"""The channels' memories in Redis (bot_server/channels/wechat/shared.py): what one
Rasa process remembers, another one finds. Real Redis (devtools/servers.py).
"""

from __future__ import annotations

import uuid
from typing import AsyncIterator, Tuple

import aiohttp
import pytest
import redis as redis_client

from bot_server.channels.wechat.memory import LocalMemory, number_buttons
from bot_server.channels.wechat.shared import KEY_NAMESPACE, RedisMemory
from bot_server.channels.wechat.wecom import WeComInput
from devtools.fake_platform import FakePlatform
from devtools.servers import Redis, free_port
from settings import RasaServerSettings, load
from tests.bot_server.channels.wechat.support import FakeBot, make_wecom, serve
from tests.bot_server.channels.wechat.test_wecom import (
    STEP,
    send,
    step_or_echo,
    text_message,
)

BUTTONS = number_buttons(STEP["buttons"])  # type: ignore[arg-type]


@pytest.fixture
async def two_processes(redis: Redis) -> AsyncIterator[Tuple[RedisMemory, RedisMemory]]:
    """The memories of one channel as two Rasa processes hold them."""
    channel = f"wecom-test-{uuid.uuid4().hex[:8]}"
    url = f"redis://{redis.host}:{redis.port}/0"
    first, second = RedisMemory(url, channel), RedisMemory(url, channel)
    yield first, second
    await first.close()
    await second.close()
    keys = redis_client.Redis(redis.host, redis.port)
    for key in keys.scan_iter(f"{KEY_NAMESPACE}:{channel}:*"):
        keys.delete(key)


async def test_a_message_id_is_handled_by_one_process_only(
    two_processes: Tuple[RedisMemory, RedisMemory],
) -> None:
    first, second = two_processes
    assert await first.seen_before("msg:1") is False
    assert await second.seen_before("msg:1") is True
    assert await first.seen_before("msg:1") is True
    assert await second.seen_before("msg:2") is False


async def test_buttons_sent_by_one_process_are_resolved_by_another(
    two_processes: Tuple[RedisMemory, RedisMemory],
) -> None:
    first, second = two_processes
    await first.remember("zhangsan", BUTTONS)
    assert await second.resolve("zhangsan", "２") == "/deny"
    # the turn started: the buttons are gone, in every process
    assert await first.resolve("zhangsan", "1") == "1"
    await second.remember("zhangsan", BUTTONS)
    assert await first.resolve("zhangsan", "好的") == "好的"  # not a number
    assert await second.resolve("zhangsan", "1") == "1"  # forgotten all the same
    await first.remember("zhangsan", BUTTONS)
    assert await second.resolve("lisi", "1") == "1"  # someone else's buttons
    assert await second.resolve("zhangsan", "9") == "9"  # no such button


async def test_redis_down_means_remembering_nothing() -> None:
    down = RedisMemory(f"redis://127.0.0.1:{free_port()}/0", "wecom")
    assert await down.seen_before("msg:1") is False
    assert await down.seen_before("msg:1") is False
    await down.remember("zhangsan", BUTTONS)
    assert await down.resolve("zhangsan", "1") == "1"
    await down.close()


def test_the_setting_picks_the_memory() -> None:
    local = load(RasaServerSettings, {})
    assert isinstance(WeComInput.memory_of(local), LocalMemory)
    shared = load(RasaServerSettings, {"CHANNEL_STATE_URL": "redis://r:6379/0"})
    memory = WeComInput.memory_of(shared)
    assert isinstance(memory, RedisMemory)
    assert memory.prefix == f"{KEY_NAMESPACE}:wecom"


async def test_a_number_reply_reaching_another_worker_is_its_button(
    platform: FakePlatform,
    http: aiohttp.ClientSession,
    two_processes: Tuple[RedisMemory, RedisMemory],
) -> None:
    """Two channels (two workers' copies) over one Redis: the first sends the
    step's buttons, the second gets the reply "1" and the redelivery."""
    first, second = two_processes
    bot = FakeBot(reply=step_or_echo)
    async with (
        serve(make_wecom(platform.base_url, memory=first), bot) as one,
        serve(make_wecom(platform.base_url, memory=second), bot) as other,
    ):
        await send(http, one, text_message("借呗不见了", msg_id="1"))
        await platform.wait_sent(1)
        await send(http, other, text_message("1", msg_id="2"))
        await platform.wait_sent(2)
        await send(http, one, text_message("1", msg_id="2"))  # delivered again
        await send(http, other, text_message("二", msg_id="3"))
        await platform.wait_sent(3)
    assert [m.text for m in bot.received] == ["借呗不见了", "/affirm", "二"]
