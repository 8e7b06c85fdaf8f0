"""Stage 1 of the pipeline: the per-sender rate limit (the ``limits`` library).

:func:`limit_rate` asks :func:`allow` before anything else looks at a message;
a sender over the limit gets ``utter_rate_limited`` and the message goes no
further: neither the gate nor the bot sees it.

Settings (settings/, read once per process):

- ``RATE_LIMIT``: messages per sender, in the ``limits`` notation
  (``20/minute``, the default; ``5/10 seconds``; ``100/hour;20/minute`` for
  several). ``off`` switches the limit off (benchmarks only; the deployment
  checks forbid it).
- ``RATE_LIMIT_STORAGE_URL``: where the counts live. ``memory://`` (the
  default: one process, the embedded profile) or ``redis://host:port/db``
  (the production profile: every Rasa instance shares the counts, so a
  sender cannot get twice the limit from two instances).

A moving window: at most N messages in any window of the period, so a burst at
the end of one minute and the start of the next is still limited.

When the storage fails (Redis down or slower than ``STORAGE_TIMEOUT_S``), the
message is let through and the error logged: the limit protects the service,
it must not take it down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import List, Optional

from limits import RateLimitItem, parse_many, strategies
from limits.storage import MemoryStorage, Storage, storage_from_string

from bot_server.pipeline.inbound import Inbound, Next
from settings import RasaServerSettings, rasa_server_settings

logger = logging.getLogger(__name__)

STORAGE_TIMEOUT_S = 0.5
KEY_NAMESPACE = "jiebei-rate"
RATE_LIMITED_RESPONSE = "utter_rate_limited"


@dataclass(frozen=True)
class Decision:
    """Whether a message may pass, and when the sender may write again."""

    allowed: bool
    retry_after_s: int = 0


class RateLimit:
    """The limits of one process: the parsed items over one storage."""

    def __init__(self, items: List[RateLimitItem], storage: Optional[Storage]):
        self.items = items
        self.storage = storage
        self.limiter = strategies.MovingWindowRateLimiter(storage) if storage else None

    @property
    def in_process(self) -> bool:
        """The counts live in this process (``memory://``): no I/O to wait for."""
        return isinstance(self.storage, MemoryStorage)

    @property
    def enabled(self) -> bool:
        """False when RATE_LIMIT is off."""
        return self.limiter is not None and bool(self.items)

    def check(self, channel: str, sender: str) -> Decision:
        """Count one message of ``sender`` (blocking; see :func:`allow`)."""
        if self.limiter is None:
            return Decision(True)
        for item in self.items:
            if not self.limiter.hit(item, KEY_NAMESPACE, channel, sender):
                reset, _ = self.limiter.get_window_stats(
                    item, KEY_NAMESPACE, channel, sender
                )
                return Decision(False, max(1, int(reset - time.time())))
        return Decision(True)


def parse_limit(raw: str) -> List[RateLimitItem]:
    """The items of ``RATE_LIMIT`` (checked by settings/); ``off`` gives none."""
    return [] if raw.strip().lower() == "off" else parse_many(raw)


def from_settings(settings: RasaServerSettings) -> RateLimit:
    """Build the process's limit from ``RATE_LIMIT`` / ``RATE_LIMIT_STORAGE_URL``."""
    items = parse_limit(settings.rate_limit)
    if not items:
        logger.warning("RATE_LIMIT=off: no per-sender rate limit")
        return RateLimit([], None)
    url = settings.rate_limit_storage_url
    options = {}
    if url.startswith(("redis://", "rediss://")):
        options = {
            "socket_timeout": STORAGE_TIMEOUT_S,
            "socket_connect_timeout": STORAGE_TIMEOUT_S,
        }
    storage = storage_from_string(url, **options)
    logger.info(
        "rate limit per sender: %s (%s)",
        "; ".join(str(item) for item in items),
        url.split("://", 1)[0],
    )
    return RateLimit(items, storage)


_limit: Optional[RateLimit] = None


def current() -> RateLimit:
    """The process's limit, built on first use."""
    global _limit
    if _limit is None:
        _limit = from_settings(rasa_server_settings())
    return _limit


def reset() -> None:
    """Forget the process's limit (tests change the environment)."""
    global _limit
    _limit = None


async def allow(channel: str, sender: str) -> Decision:
    """May this message of ``sender`` on ``channel`` pass? Fails open."""
    limit = current()
    if not limit.enabled:
        return Decision(True)
    try:
        if limit.in_process:  # a dictionary lookup: no thread, no timeout
            return limit.check(channel, sender)
        return await asyncio.wait_for(
            asyncio.to_thread(limit.check, channel, sender), STORAGE_TIMEOUT_S * 2
        )
    except Exception as error:  # storage down or slow: let the message through
        logger.error(
            "rate limit storage failed (%s); message of %s let through",
            type(error).__name__,
            sender,
        )
        return Decision(True)


async def limit_rate(inbound: Inbound, then: Next) -> None:
    """The stage: a sender over the limit is told so; the message stops here."""
    decision = await allow(inbound.source, inbound.sender)
    if not decision.allowed:
        logger.warning(
            "rate limit: message of %s on %s not processed (retry in %ss)",
            inbound.sender,
            inbound.source,
            decision.retry_after_s,
        )
        await inbound.answer(RATE_LIMITED_RESPONSE)
        return
    await then(inbound)
