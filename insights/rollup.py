"""Daily rollups of the tracker store's events, for the figures of closed days.

Counting conversations, messages and intents over 90 days of events takes
seconds (hundreds of thousands of user messages); a day's events never change
once the day is over. So each closed UTC day is rolled up once into insights'
own tables in the case store's database (the tracker store stays Rasa's):

* ``insights_day_senders``: per day and conversation, its channel, its user
  messages, the fallbacks among them and the "did you mean" runs;
* ``insights_day_intents``: per day, channel and intent, the user messages;
* ``insights_days``: the days rolled up.

A day is closed CLOSE_AFTER_S after it ended (Rasa stores a turn's events
within seconds of their timestamps). Days not yet closed are counted from the
events directly. The purge (insights/retention.py) drops the rollups of the
days it deleted events of; they are rolled up again from what is left. Two
processes rolling up one day: the second finds the day taken and adds nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from insights.stores import (
    Stores,
    conversations_table,
    day_intents_table,
    day_senders_table,
    days_table,
    event_channel,
    events_table,
)

logger = logging.getLogger(__name__)

# Seconds after its end that a day is rolled up.
CLOSE_AFTER_S = 3600
SECONDS_A_DAY = 86400
FALLBACK_INTENT = "nlu_fallback"
CLARIFY_ACTION = "action_clarify_intent"


def day_number(moment: float) -> int:
    """The UTC day (days since 1970-01-01) of a unix time."""
    return int(moment // SECONDS_A_DAY)


def first_open_day(now: Optional[datetime] = None) -> int:
    """The first day that is not closed yet (its events still come in)."""
    now = now or datetime.now(timezone.utc)
    return day_number(now.timestamp() - CLOSE_AFTER_S)


def ensure_rollups(stores: Stores, now: Optional[datetime] = None) -> List[int]:
    """Roll up every closed day that is not yet; the days rolled up now."""
    stores.ready_cases()
    if not stores.ready_tracker():
        return []
    events = events_table.c
    first = stores.read(
        stores.tracker,
        lambda c: c.execute(
            sa.select(sa.func.min(events.timestamp)).where(events.type_name == "user")
        ).scalar(),
    )
    if first is None:
        return []
    done = {
        row[0]
        for row in stores.read(
            stores.cases, lambda c: c.execute(sa.select(days_table.c.day)).all()
        )
    }
    built = []
    for day in range(day_number(float(first)), first_open_day(now)):
        if day not in done and roll_up_day(stores, day):
            built.append(day)
    if built:
        analyze(stores)
        logger.info("insights: rolled up %d days", len(built))
    return built


def roll_up_day(stores: Stores, day: int) -> bool:
    """Roll up one closed day; False when another process had done it."""
    stores.ready_cases()
    senders, intents = _day_rows(stores, day)

    def write(connection: sa.engine.Connection) -> None:
        connection.execute(
            days_table.insert(),
            {"day": day, "built_at": datetime.now(timezone.utc)},
        )
        if senders:
            connection.execute(day_senders_table.insert(), senders)
        if intents:
            connection.execute(day_intents_table.insert(), intents)

    try:
        with stores.cases.begin() as connection:
            write(connection)
    except IntegrityError:
        return False  # the day's row exists: another process rolled it up
    channels = {row["sender_id"]: row["channel"] for row in senders if row["channel"]}
    if channels:
        stores.write(stores.cases, lambda c: _remember_channels(c, channels))
    return True


def _remember_channels(
    connection: sa.engine.Connection, channels: Dict[str, str]
) -> None:
    """Each conversation's channel: the first one rolled up stays."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(conversations_table).on_conflict_do_nothing(
        index_elements=["conversation_id"]
    )
    connection.execute(
        statement,
        [
            {"conversation_id": sender, "channel": channel}
            for sender, channel in channels.items()
        ],
    )


def analyze(stores: Stores) -> None:
    """Fresh planner statistics of the rollup tables (they grew just now)."""
    tables = ", ".join(
        table.name
        for table in (day_senders_table, day_intents_table, conversations_table)
    )
    if stores.cases.dialect.name == "postgresql":
        stores.write(stores.cases, lambda c: c.execute(sa.text(f"ANALYZE {tables}")))
    else:
        stores.write(stores.cases, lambda c: c.execute(sa.text("ANALYZE")))


@dataclass(frozen=True)
class UserMessage:
    """A user event, as the figures count it."""

    sender_id: str
    timestamp: float
    intent_name: Optional[str]
    channel: Optional[str]


def read_user_messages(stores: Stores, since: float, until: float) -> List[UserMessage]:
    """The user events of [since, until), each with its channel (read in Python)."""
    events = events_table.c
    query = sa.select(
        events.sender_id, events.timestamp, events.intent_name, events.data
    ).where(
        events.type_name == "user",
        events.timestamp >= since,
        events.timestamp < until,
    )
    rows = stores.read(stores.tracker, lambda c: c.execute(query).all())
    return [
        UserMessage(sender, float(moment), intent, event_channel(data))
        for sender, moment, intent, data in rows
    ]


def clarify_runs(stores: Stores, since: float, until: float) -> List[Tuple[str, float]]:
    """(sender, time) of the "did you mean" runs of [since, until)."""
    events = events_table.c
    query = sa.select(events.sender_id, events.timestamp).where(
        events.action_name == CLARIFY_ACTION,
        events.type_name == "action",
        events.timestamp >= since,
        events.timestamp < until,
    )
    rows = stores.read(stores.tracker, lambda c: c.execute(query).all())
    return [(sender, float(moment)) for sender, moment in rows]


def _day_rows(
    stores: Stores, day: int
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """The rollup rows of one day, read from the events."""
    start, end = day * SECONDS_A_DAY, (day + 1) * SECONDS_A_DAY
    senders: Dict[str, Dict[str, Any]] = {}

    def row(sender: str) -> Dict[str, Any]:
        return senders.setdefault(
            sender,
            {
                "day": day,
                "sender_id": sender,
                "channel": None,
                "user_messages": 0,
                "fallbacks": 0,
                "clarifies": 0,
            },
        )

    intents: Counter[Tuple[str, str]] = Counter()
    for message in read_user_messages(stores, start, end):
        found = row(message.sender_id)
        found["channel"] = found["channel"] or message.channel
        found["user_messages"] += 1
        found["fallbacks"] += message.intent_name == FALLBACK_INTENT
        intents[(message.channel or "", message.intent_name or "")] += 1
    for sender, _ in clarify_runs(stores, start, end):
        row(sender)["clarifies"] += 1
    return list(senders.values()), [
        {"day": day, "channel": channel, "intent_name": intent, "messages": count}
        for (channel, intent), count in intents.items()
    ]


def drop_rollups(connection: sa.engine.Connection, up_to_day: int) -> int:
    """Forget the rollups of the days up to ``up_to_day``; how many days."""
    dropped = connection.execute(
        days_table.delete().where(days_table.c.day <= up_to_day)
    ).rowcount
    connection.execute(
        day_senders_table.delete().where(day_senders_table.c.day <= up_to_day)
    )
    connection.execute(
        day_intents_table.delete().where(day_intents_table.c.day <= up_to_day)
    )
    return int(dropped)
