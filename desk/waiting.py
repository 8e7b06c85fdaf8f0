"""What a user waiting for a person is told: pure, shared by the bot's two sides.

The handoff action (actions/handoff.py) says it once when the case opens, the
reply guard of the Rasa server (bot_server/pipeline/guard.py) to each message
the user sends while the case waits. Both pick their domain response by the
``kind`` decided here and fill it with ``values`` (the responses' variables,
domain/handoff.yml).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, Optional

from desk.hours import ServiceHours

# Outside the service hours: when agents are back (the case is kept).
CLOSED = "closed"
# In the queue, with the typical wait still ahead, or without a known wait.
QUEUED_WITH_WAIT = "queued_with_wait"
QUEUED = "queued"
# The case's place cannot be told (an agent took it at once, or unreadable).
UNQUEUED = "unqueued"


@dataclass(frozen=True)
class WaitingNews:
    """Which response (``kind``) and its template variables."""

    kind: str
    values: Dict[str, Any] = field(default_factory=dict)


def waiting_news(
    hours: ServiceHours,
    now: datetime,
    position: Optional[int],
    typical_wait_s: Optional[float],
    waited_s: float = 0.0,
) -> WaitingNews:
    """What to tell a user whose case is in the queue at ``now``.

    Args:
        hours: the desk's service hours.
        now: the current moment (timezone-aware).
        position: the case's place in the queue (1 = next), None if unknown.
        typical_wait_s: the median wait of recent cases, None if none yet.
        waited_s: how long this case has waited already.
    """
    opens = hours.next_opening(now)
    if opens is not None:
        return WaitingNews(
            CLOSED,
            {
                "service_hours": hours.label,
                "opens_month": opens.month,
                "opens_day": opens.day,
                "opens_time": f"{opens:%H:%M}",
            },
        )
    if position is None:
        return WaitingNews(UNQUEUED)
    if typical_wait_s is not None and typical_wait_s - waited_s > 0:
        minutes = max(1, math.ceil((typical_wait_s - waited_s) / 60))
        return WaitingNews(
            QUEUED_WITH_WAIT, {"queue_position": position, "wait_minutes": minutes}
        )
    return WaitingNews(QUEUED, {"queue_position": position})
