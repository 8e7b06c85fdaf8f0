"""When people staff the agent desk: the service hours, pure and local-time.

``DESK_SERVICE_HOURS`` is ``always`` or one daily range ``HH:MM-HH:MM`` in
``DESK_TIMEZONE`` (default Asia/Shanghai); a range that ends before it starts
runs over midnight (``21:00-09:00``). The bot reads it to tell a user who asks
for a person outside the hours when agents are back (actions/handoff.py and
the reply guard, bot_server/pipeline/guard.py). No clock is read here: every
function takes ``now``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ALWAYS = "always"
DEFAULT_HOURS = "09:00-21:00"
DEFAULT_TIMEZONE = "Asia/Shanghai"
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def timezone_named(name: str) -> tzinfo:
    """The IANA time zone ``name`` (ValueError if unknown)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name like Asia/Shanghai)"
        ) from None


@dataclass(frozen=True)
class ServiceHours:
    """Daily service hours; ``start is None`` means always open."""

    start: Optional[time]
    end: Optional[time]
    zone: tzinfo

    @classmethod
    def parse(cls, spec: str, timezone: str = DEFAULT_TIMEZONE) -> ServiceHours:
        """``always`` or ``HH:MM-HH:MM`` in ``timezone`` (ValueError if not)."""
        zone = timezone_named(timezone)
        spec = spec.strip()
        if spec.lower() == ALWAYS:
            return cls(None, None, zone)
        found = _RANGE.match(spec)
        if found is None:
            raise ValueError(
                f"service hours {spec!r}: must be 'always' or like 09:00-21:00"
            )
        start = time(int(found.group(1)), int(found.group(2)))
        end = time(int(found.group(3)), int(found.group(4)))
        if start == end:
            raise ValueError(
                f"service hours {spec!r}: start equals end (for all day: always)"
            )
        return cls(start, end, zone)

    @property
    def always(self) -> bool:
        """Open at every hour."""
        return self.start is None

    @property
    def label(self) -> str:
        """As configured: ``09:00-21:00`` or ``always``."""
        if self.start is None or self.end is None:
            return ALWAYS
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def local(self, now: datetime) -> datetime:
        """``now`` (timezone-aware) in the desk's time zone."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return now.astimezone(self.zone)

    def is_open(self, now: datetime) -> bool:
        """Whether agents are on duty at ``now``."""
        if self.start is None or self.end is None:
            return True
        clock = self.local(now).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end  # over midnight

    def next_opening(self, now: datetime) -> Optional[datetime]:
        """When agents are next on duty, in local time; None while open (or always)."""
        if self.start is None or self.is_open(now):
            return None
        local = self.local(now)
        today = local.replace(
            hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0
        )
        if today > local:
            return today
        # Built from the date, not by adding 24 h to a local time: a day with a
        # daylight-saving change is not 24 h long (none in Asia/Shanghai).
        tomorrow = (local + timedelta(days=1)).date()
        return datetime.combine(tomorrow, self.start, tzinfo=self.zone)
