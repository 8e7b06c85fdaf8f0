"""The channels' memories in Redis, shared by every Rasa process.

With several Rasa processes (Sanic workers, Kubernetes replicas) the platform
hands each callback to whichever process the connection reaches: a number
reply may reach another process than the one that sent the buttons, and a
redelivery another one than the first delivery. ``RedisMemory`` keeps both
memories of ``memory.LocalMemory`` in Redis (``CHANNEL_STATE_URL``; the
production profile's Redis), with the same time limits:

- a message id: ``SET key 1 NX EX 600``: the first process to set it handles
  the message;
- the last turn's buttons of a user: a hash number → payload that expires
  with the session, read and deleted in one transaction when the user's next
  message arrives.

Redis down or slower than ``TIMEOUT_S``: the error is logged and the channel
goes on as if nothing was remembered (the message is handled, a number is
passed on as typed): the memories help, they must not stop the channel.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Optional, Sequence, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot_server.channels.wechat.memory import (
    BUTTONS_TTL_S,
    REPLAY_TTL_S,
    NumberedButton,
    as_number,
)

logger = logging.getLogger(__name__)

KEY_NAMESPACE = "jiebei-channel"
TIMEOUT_S = 0.5

T = TypeVar("T")


class RedisMemory:
    """One channel's memories in Redis, under ``jiebei-channel:<channel>:``."""

    def __init__(self, url: str, channel: str) -> None:
        self.url = url
        self.prefix = f"{KEY_NAMESPACE}:{channel}"
        # Made on first use, in the event loop (and the worker process) that
        # uses it: Sanic forks its workers after the channels are built.
        self._client: Optional[aioredis.Redis] = None

    def client(self) -> aioredis.Redis:
        """The Redis client of this process."""
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self.url,
                socket_timeout=TIMEOUT_S,
                socket_connect_timeout=TIMEOUT_S,
            )
        return self._client

    async def _guarded(self, what: str, call: Awaitable[T], otherwise: T) -> T:
        try:
            return await asyncio.wait_for(call, TIMEOUT_S * 2)
        except (RedisError, OSError, asyncio.TimeoutError) as error:
            logger.error(
                "channel memory in Redis failed (%s, %s): going on without it",
                what,
                type(error).__name__,
            )
            return otherwise

    async def seen_before(self, key: str) -> bool:
        """True for a message id any process saw within REPLAY_TTL_S."""
        command = self.client().set(
            f"{self.prefix}:seen:{key}", 1, nx=True, ex=int(REPLAY_TTL_S)
        )
        first = await self._guarded("message id", command, True)
        return not first

    async def remember(self, user: str, buttons: Sequence[NumberedButton]) -> None:
        """The buttons the bot just sent to ``user`` (replacing older ones)."""
        if not buttons:
            return
        key = self._buttons_key(user)
        pipeline = self.client().pipeline(transaction=True)
        pipeline.delete(key)
        pipeline.hset(key, mapping={b.number: b.payload for b in buttons})
        pipeline.expire(key, int(BUTTONS_TTL_S))
        await self._guarded("buttons", pipeline.execute(), [])

    async def resolve(self, user: str, text: str) -> str:
        """``text``, or the payload of the button numbered so.

        Forgets the buttons: the user's turn has started.
        """
        pipeline = self.client().pipeline(transaction=True)
        pipeline.hgetall(self._buttons_key(user))
        pipeline.delete(self._buttons_key(user))
        answers: Any = await self._guarded("buttons", pipeline.execute(), [{}])
        number = as_number(text)
        if number is None:
            return text
        payload = (answers[0] or {}).get(number.encode())
        return payload.decode() if payload is not None else text

    def _buttons_key(self, user: str) -> str:
        return f"{self.prefix}:buttons:{user}"

    async def close(self) -> None:
        """Close the connections (on server stop)."""
        if self._client is not None:
            await self._client.close()
            self._client = None
