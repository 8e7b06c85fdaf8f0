"""What the WeChat-style channels remember between messages.

- ``ReplayCache``: message ids seen recently. The platforms deliver a message
  again when we do not answer within 5 seconds (up to three times), and a
  captured request could be replayed within the timestamp window; each is
  processed once.
- ``ButtonMemory``: the quick-reply buttons of the bot's last turn per user,
  so a reply of just "1" can be mapped back to the first button's payload
  (the platforms' text messages cannot carry buttons).

Both are small, bounded and in this process (``LocalMemory`` puts them behind
the ``ChannelMemory`` interface the channels use). With several Rasa
processes (workers, replicas) a redelivery or a number reply may reach
another process: ``shared.RedisMemory`` keeps the same in Redis
(``CHANNEL_STATE_URL``).
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
)

# Longer than the 5-minute timestamp window (a replay older than that is
# refused by its timestamp) and the platforms' retries (about 15 s).
REPLAY_TTL_S = 600.0
REPLAY_MAX_ENTRIES = 50_000
# Buttons stay answerable by number as long as a Rasa session (60 minutes).
BUTTONS_TTL_S = 3600.0
BUTTONS_MAX_USERS = 10_000
_NUMBER = re.compile(r"\d{1,3}")


class ReplayCache:
    """Keys seen within ``ttl_s``, at most ``max_entries`` (oldest dropped)."""

    def __init__(
        self,
        ttl_s: float = REPLAY_TTL_S,
        max_entries: int = REPLAY_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen_before(self, key: str) -> bool:
        """True for a key seen within the TTL; otherwise remember it."""
        now = self._clock()
        while self._seen:
            oldest, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[oldest]
        if key in self._seen:
            return True
        self._seen[key] = now + self._ttl_s
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
        return False


@dataclass(frozen=True)
class NumberedButton:
    """A button as sent in text: the number to reply with, title, payload."""

    number: str
    title: str
    payload: str


def number_buttons(buttons: Sequence[Mapping[str, Any]]) -> List[NumberedButton]:
    """Buttons numbered 1, 2, 3 … in order.

    Buttons whose payloads are all distinct numbers keep them as their
    numbers: a rating "5 分" is answered with 5, not with 1.
    """
    titles = [str(b.get("title") or b.get("payload") or "") for b in buttons]
    payloads = [str(b.get("payload") or b.get("title") or "") for b in buttons]
    numeric = all(_NUMBER.fullmatch(p) for p in payloads) and len(set(payloads)) == len(
        payloads
    )
    pairs = zip(titles, payloads, strict=True)
    return [
        NumberedButton(payload if numeric else str(index), title, payload)
        for index, (title, payload) in enumerate(pairs, start=1)
    ]


def as_number(text: str) -> Optional[str]:
    """The number a reply consists of ("1", "１", " 2 "), or None."""
    normal = unicodedata.normalize("NFKC", text).strip().rstrip(".。")
    return str(int(normal)) if _NUMBER.fullmatch(normal) else None


class ButtonMemory:
    """The last turn's numbered buttons per user (bounded, expiring)."""

    def __init__(
        self,
        ttl_s: float = BUTTONS_TTL_S,
        max_users: int = BUTTONS_MAX_USERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max = max_users
        self._clock = clock
        self._by_user: OrderedDict[str, Tuple[float, Dict[str, str]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_user)

    def remember(self, user: str, buttons: Sequence[NumberedButton]) -> None:
        """The buttons the bot just sent to ``user`` (replacing older ones)."""
        if not buttons:
            return
        self._by_user.pop(user, None)
        self._by_user[user] = (
            self._clock() + self._ttl_s,
            {b.number: b.payload for b in buttons},
        )
        while len(self._by_user) > self._max:
            self._by_user.popitem(last=False)

    def resolve(self, user: str, text: str) -> str:
        """What to hand to Rasa for ``text``: a button's payload for its number.

        Starts the user's turn: the remembered buttons are forgotten, so a
        number typed after a turn without buttons (a free answer such as a
        score) is passed on as typed.
        """
        entry = self._by_user.pop(user, None)
        number = as_number(text)
        if entry is None or number is None or entry[0] <= self._clock():
            return text
        return entry[1].get(number, text)


class ChannelMemory(Protocol):
    """What a channel remembers: message ids seen, the last turn's buttons."""

    async def seen_before(self, key: str) -> bool:
        """True for a message id seen within its time; otherwise remember it."""

    async def remember(self, user: str, buttons: Sequence[NumberedButton]) -> None:
        """The buttons the bot just sent to ``user`` (replacing older ones)."""

    async def resolve(self, user: str, text: str) -> str:
        """``text``, or the payload of the button whose number it is.

        Starts the user's turn: the remembered buttons are forgotten.
        """

    async def close(self) -> None:
        """Let go of what it holds (on server stop)."""


@dataclass
class LocalMemory:
    """This process's memories: right for one Rasa process."""

    replays: ReplayCache = field(default_factory=ReplayCache)
    buttons: ButtonMemory = field(default_factory=ButtonMemory)

    async def seen_before(self, key: str) -> bool:
        """See ReplayCache.seen_before."""
        return self.replays.seen_before(key)

    async def remember(self, user: str, buttons: Sequence[NumberedButton]) -> None:
        """See ButtonMemory.remember."""
        self.buttons.remember(user, buttons)

    async def resolve(self, user: str, text: str) -> str:
        """See ButtonMemory.resolve."""
        return self.buttons.resolve(user, text)

    async def close(self) -> None:
        """Nothing to let go of."""
