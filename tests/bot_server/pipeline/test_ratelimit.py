"""The per-sender rate limit (bot_server/pipeline/ratelimit.py): counts and stage."""

from __future__ import annotations

import asyncio
import uuid
from typing import List

import pytest

from bot_server.pipeline import ratelimit
from devtools.servers import Redis
from settings import RasaServerSettings, load
from tests.bot_server.pipeline.support import Passed, inbound, response_text, texts


def decisions(sender: str, count: int, channel: str = "rest") -> List[bool]:
    async def run() -> List[bool]:
        return [(await ratelimit.allow(channel, sender)).allowed for _ in range(count)]

    return asyncio.run(run())


def test_the_default_lets_twenty_messages_a_minute_through() -> None:
    assert decisions("u1", 25) == [True] * 20 + [False] * 5


def test_senders_and_channels_are_counted_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RATE_LIMIT", "3/minute")
    assert decisions("a", 4) == [True, True, True, False]
    assert decisions("b", 1) == [True]
    assert decisions("a", 1, channel="socketio") == [True]


def test_a_refusal_says_when_to_come_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT", "1/minute")
    decisions("c", 1)
    decision = asyncio.run(ratelimit.allow("rest", "c"))
    assert not decision.allowed
    assert 1 <= decision.retry_after_s <= 60


def test_off_switches_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT", "off")
    assert decisions("d", 50) == [True] * 50
    assert ratelimit.parse_limit("off") == []
    assert len(ratelimit.parse_limit("100/hour;5/minute")) == 2
    # Junk never gets here: settings/ refuses to start with it.


def test_the_counts_are_shared_through_redis(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two Rasa processes (two RateLimit objects) share one sender's count."""
    settings = load(
        RasaServerSettings,
        {
            "RATE_LIMIT": "4/minute",
            "RATE_LIMIT_STORAGE_URL": f"redis://{redis.host}:{redis.port}/0",
        },
    )
    sender = f"shared-{uuid.uuid4().hex}"
    first, second = ratelimit.from_settings(settings), ratelimit.from_settings(settings)
    results = [
        (first if i % 2 == 0 else second).check("rest", sender).allowed
        for i in range(6)
    ]
    assert results == [True] * 4 + [False] * 2


def test_a_storage_that_is_down_lets_messages_through(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RATE_LIMIT", "1/minute")
    # A closed port: every hit fails with a connection error.
    monkeypatch.setenv("RATE_LIMIT_STORAGE_URL", "redis://127.0.0.1:1/0")
    assert decisions("e", 3) == [True, True, True]
    assert "rate limit storage failed" in caplog.text


async def test_the_stage_tells_a_sender_over_the_limit_and_stops_the_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RATE_LIMIT", "2/minute")
    passed = Passed("好的")
    answered = []
    for text, sender in (("一", "u12"), ("二", "u12"), ("三", "u12"), ("四", "u13")):
        message = inbound(text, sender, input_channel="rest")
        await ratelimit.limit_rate(message, passed)
        answered += texts(message.channel)
    assert passed.seen == ["一", "二", "四"]
    limited = response_text(ratelimit.RATE_LIMITED_RESPONSE)
    assert answered == ["好的", "好的", limited, "好的"]
