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
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from insights.stores import (
    Stores,
    channel_of,
    conversations_table,
    day_intents_table,
    day_senders_table,
    days_table,
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


def _day_rows(
    stores: Stores, day: int
) -> tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """The rollup rows of one day, read from the events."""
    engine = stores.tracker
    events = events_table.c
    start, end = day * SECONDS_A_DAY, (day + 1) * SECONDS_A_DAY
    in_day = sa.and_(events.timestamp >= start, events.timestamp < end)
    user = sa.and_(events.type_name == "user", in_day)
    users = sa.select(
        events.sender_id.label("sender_id"),
        channel_of(engine).label("channel"),
        sa.literal_column("1").label("u"),
        sa.case((events.intent_name == FALLBACK_INTENT, 1), else_=0).label("f"),
        sa.literal_column("0").label("c"),
    ).where(user)
    clarifies = sa.select(
        events.sender_id,
        sa.null(),
        sa.literal_column("0"),
        sa.literal_column("0"),
        sa.literal_column("1"),
    ).where(events.action_name == CLARIFY_ACTION, events.type_name == "action", in_day)
    both = sa.union_all(users, clarifies).subquery()
    per_sender = sa.select(
        both.c.sender_id,
        sa.func.max(both.c.channel),
        sa.func.sum(both.c.u),
        sa.func.sum(both.c.f),
        sa.func.sum(both.c.c),
    ).group_by(both.c.sender_id)
    channel = channel_of(engine)
    per_intent = (
        sa.select(channel, events.intent_name, sa.func.count())
        .where(user)
        .group_by(channel, events.intent_name)
    )

    def read(connection: sa.engine.Connection) -> tuple[List[Any], List[Any]]:
        return (
            list(connection.execute(per_sender)),
            list(connection.execute(per_intent)),
        )

    sender_rows, intent_rows = stores.read(engine, read)
    senders = [
        {
            "day": day,
            "sender_id": sender,
            "channel": channel_name,
            "user_messages": int(messages or 0),
            "fallbacks": int(fallbacks or 0),
            "clarifies": int(runs or 0),
        }
        for sender, channel_name, messages, fallbacks, runs in sender_rows
    ]
    intents = [
        {
            "day": day,
            "channel": channel_name or "",
            "intent_name": intent or "",
            "messages": int(count),
        }
        for channel_name, intent, count in intent_rows
    ]
    return senders, intents


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
