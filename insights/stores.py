"""The two databases insights reads: Rasa's tracker store and the case store.

They may be different databases (PostgreSQL in production: ``jiebei_tracker``
and ``jiebei_accounts``; SQLite files when embedded), so nothing here joins
across them. Rasa creates the ``events`` table itself and owns its columns;
insights only adds indexes (``CREATE INDEX IF NOT EXISTS``, concurrently on
PostgreSQL so Rasa's writes never wait) the first time it reads a store.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from actions.services.cases import cases_table
from actions.services.sql import StoreUnavailable

logger = logging.getLogger(__name__)

# Seconds a statement of insights may take (the figures over 100,000
# conversations take well under one; a purge of a large backlog longer).
QUERY_TIMEOUT_S = 60.0
WORK_MEM = "64MB"

# Rasa's SQLTrackerStore table (rasa/core/tracker_store.py, SQLEvent), as
# insights reads it. Never created here: Rasa creates it on its first start.
_tracker_metadata = sa.MetaData()
events_table = sa.Table(
    "events",
    _tracker_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)

# The NLU's confidence in the intent of a user event, as SQL: the review
# queue's "unsure" messages, on an index of it. An index expression runs on
# every event Rasa stores, so it must never raise, and it must read what Rasa
# wrote even when that is not strict JSON: the event holds what a client sent
# as metadata, which may be NaN (Python's json writes it; PostgreSQL's json
# type and SQLite's json_valid refuse it). So it reads the number after the
# first "confidence" key, which in Rasa's serialisation of a user event is
# the intent's: the user's words before it have their quotes escaped, the
# metadata comes after it. No key: NULL.
_CONFIDENCE_KEY = '"confidence": '
CONFIDENCE_SQL: Mapping[str, str] = {
    "sqlite": f"CASE WHEN instr(data, '{_CONFIDENCE_KEY}') > 0 THEN CAST(substr(data, "
    f"instr(data, '{_CONFIDENCE_KEY}') + {len(_CONFIDENCE_KEY)}) AS REAL) END",
    "postgresql": "(substring(data from "
    "'\"confidence\": (-?[0-9]+(?:\\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)'))::float",
}
CONFIDENCE = "<confidence>"
CONFIDENCE_INDEX = "ix_insights_events_user_confidence"


@dataclass(frozen=True)
class IndexSpec:
    """An index insights adds: plain columns, or CONFIDENCE for the expression."""

    name: str
    table: str
    columns: Tuple[str, ...]
    # Only these rows (a partial index), as SQL.
    where: Optional[str] = None

    def sql(self, engine: Engine, concurrently: bool = False) -> str:
        """CREATE INDEX IF NOT EXISTS ... in the engine's dialect."""
        quote = engine.dialect.identifier_preparer.quote
        expressions = {CONFIDENCE: CONFIDENCE_SQL[engine.dialect.name]}
        # An expression in an index definition is written in parentheses.
        columns = ", ".join(
            f"({expressions[column]})" if column in expressions else quote(column)
            for column in self.columns
        )
        where = f" WHERE {self.where}" if self.where else ""
        how = "CONCURRENTLY " if concurrently else ""
        return (
            f"CREATE INDEX {how}IF NOT EXISTS {quote(self.name)} "
            f"ON {self.table} ({columns}){where}"
        )


# What the queries need:
# - user and action events of a date range (the figures, the review queue);
#   the figures' columns are in it, so counting reads the index only;
# - the user events the NLU was unsure of (the review queue);
# - action events by name and time ("did you mean" runs);
# - a sender's events by type and time (the user's messages before a "did
#   you mean" or a 转人工; the purge's "last event");
# - outcomes by their last change (with what the figures count of them),
#   cases by their opening.
TRACKER_INDEXES: Tuple[IndexSpec, ...] = (
    IndexSpec(
        "ix_insights_events_type_time",
        "events",
        ("type_name", "timestamp", "sender_id", "intent_name"),
    ),
    IndexSpec(
        CONFIDENCE_INDEX,
        "events",
        (CONFIDENCE, "timestamp"),
        where="type_name = 'user'",
    ),
    IndexSpec("ix_insights_events_action_time", "events", ("action_name", "timestamp")),
    IndexSpec(
        "ix_insights_events_sender_type_time",
        "events",
        ("sender_id", "type_name", "timestamp"),
    ),
)
CASE_INDEXES: Tuple[IndexSpec, ...] = (
    IndexSpec(
        "ix_insights_outcomes_updated",
        "diagnosis_outcomes",
        ("updated_at", "outcome", "rating", "causes"),
    ),
    IndexSpec("ix_insights_cases_created", "handoff_cases", ("created_at",)),
)


# insights' own tables, in the case store's database (the tracker store is
# Rasa's: insights only reads it, and adds indexes).
insights_metadata = sa.MetaData()
# What reviewers said a message meant (insights/review.py). The key is a
# hash of the message's normalised key (the API's item id): the key itself
# can be longer than a PostgreSQL index entry may be (1000 Chinese characters).
labels_table = sa.Table(
    "review_labels",
    insights_metadata,
    sa.Column("item_id", sa.String(64), primary_key=True),
    sa.Column("normalised", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("reviewer", sa.String(64), nullable=False),
    sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("predicted", sa.String(255), nullable=True),
    sa.Column("confidence", sa.Float, nullable=True),
)
# Daily rollups of the events of closed days (insights/rollup.py): the days
# rolled up; per day and conversation its channel and counts; per day,
# channel and intent the user messages.
days_table = sa.Table(
    "insights_days",
    insights_metadata,
    sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
)
day_senders_table = sa.Table(
    "insights_day_senders",
    insights_metadata,
    sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sender_id", sa.String(255), primary_key=True),
    sa.Column("channel", sa.String(255), nullable=True),
    sa.Column("user_messages", sa.Integer, nullable=False),
    sa.Column("fallbacks", sa.Integer, nullable=False),
    sa.Column("clarifies", sa.Integer, nullable=False),
    sa.Index("ix_insights_day_senders_channel", "channel", "sender_id"),
)
# Each conversation's channel (its first user message's), for the channel
# filter of the outcome and case figures.
conversations_table = sa.Table(
    "insights_conversations",
    insights_metadata,
    sa.Column("conversation_id", sa.String(255), primary_key=True),
    sa.Column("channel", sa.String(255), nullable=False),
    sa.Index("ix_insights_conversations_channel", "channel", "conversation_id"),
)
day_intents_table = sa.Table(
    "insights_day_intents",
    insights_metadata,
    sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("channel", sa.String(255), primary_key=True),
    sa.Column("intent_name", sa.String(255), primary_key=True),
    sa.Column("messages", sa.Integer, nullable=False),
)


def connect_args(url: str, timeout_s: float) -> Dict[str, Any]:
    """Bounded connecting and statements (as actions/services/sql.py does)."""
    if url.startswith("sqlite"):
        return {"timeout": timeout_s, "check_same_thread": False}
    if url.startswith("postgresql"):
        # Counting 100,000 conversations sorts or hashes more than
        # PostgreSQL's default 4 MB of working memory: it would spill to disk.
        return {
            "connect_timeout": max(1, math.ceil(min(timeout_s, 10))),
            "options": f"-c statement_timeout={int(timeout_s * 1000)} "
            f"-c work_mem={WORK_MEM}",
        }
    return {}


@functools.lru_cache(maxsize=8)
def engine_for(url: str, timeout_s: float = QUERY_TIMEOUT_S) -> Engine:
    """One pooled engine per URL and timeout (created on first use)."""
    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(
        url,
        connect_args=connect_args(url, timeout_s),
        pool_pre_ping=True,
        future=True,
    )


def is_postgres(engine: Engine) -> bool:
    """PostgreSQL (production) rather than SQLite (embedded)."""
    return engine.dialect.name == "postgresql"


def utc_moment(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def db_time(engine: Engine, moment: datetime) -> datetime:
    """A UTC moment as the case store compares it.

    SQLite keeps the case store's times as naive UTC text; PostgreSQL as
    timestamptz.
    """
    moment = moment.astimezone(timezone.utc)
    return moment if is_postgres(engine) else moment.replace(tzinfo=None)


def aware(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back: they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# A literal, not a bound parameter: PostgreSQL matches a GROUP BY expression
# to the selected one only when both are written the same.
_SECONDS_A_DAY = sa.literal_column("86400")


def epoch_day(engine: Engine, column: Any) -> Any:
    """SQL: the UTC day number (days since 1970-01-01) of a unix time column."""
    if is_postgres(engine):
        return sa.cast(sa.func.floor(column / _SECONDS_A_DAY), sa.Integer)
    return sa.cast(column / _SECONDS_A_DAY, sa.Integer)


_CHANNEL_KEY = '"input_channel": '


def event_channel(data: Optional[str]) -> Optional[str]:
    """The ``input_channel`` of an event's JSON (``events.data``), or None.

    Read in Python, not SQL: Python's json reads whatever Rasa wrote (NaN
    included), and only the top-level key counts, not one a client put in
    its metadata. Rasa writes the top-level key in every user event, so when
    the key is there once, that is it, and its plain value is read without
    parsing the rest (a day's messages are read for each rollup).
    """
    if not data:
        return None
    at = data.find(_CHANNEL_KEY)
    if at < 0:
        return None
    start = at + len(_CHANNEL_KEY)
    if data.find(_CHANNEL_KEY, start) < 0 and data.startswith('"', start):
        end = data.find('"', start + 1)
        value = data[start + 1 : end]
        if end > 0 and "\\" not in value:
            return value[:255] or None
    try:
        event = json.loads(data)
    except ValueError:
        return None
    channel = event.get("input_channel") if isinstance(event, dict) else None
    return str(channel)[:255] if channel else None


def confidence_of(engine: Engine) -> Any:
    """SQL: the NLU's confidence in a user event's intent."""
    return sa.literal_column(CONFIDENCE_SQL[engine.dialect.name])


@dataclass
class Stores:
    """The tracker store and the case store (SQLAlchemy engines)."""

    tracker: Engine
    cases: Engine
    _indexed: Dict[str, bool] = field(default_factory=dict)

    @classmethod
    def from_urls(
        cls, tracker_url: str, case_url: str, timeout_s: float = QUERY_TIMEOUT_S
    ) -> Stores:
        """Engines for the two stores (the same engine when the URLs are equal)."""
        tracker = engine_for(tracker_url, timeout_s)
        cases = tracker if case_url == tracker_url else engine_for(case_url, timeout_s)
        return cls(tracker, cases)

    def has_events(self) -> bool:
        """Whether Rasa has created its table yet (it does on its first start)."""
        try:
            return sa.inspect(self.tracker).has_table("events")
        except SQLAlchemyError as error:
            raise StoreUnavailable(_first_line(error)) from None

    def ready_tracker(self) -> bool:
        """The events table exists, with our indexes; False while it does not."""
        if self._indexed.get("tracker"):
            return True
        if not self.has_events():
            return False
        ensure_indexes(self.tracker, TRACKER_INDEXES)
        self._indexed["tracker"] = True
        return True

    def ready_cases(self) -> None:
        """The case store's tables, with our indexes, and insights' own tables.

        The actions' tables are created as CaseStore creates them.
        """
        if self._indexed.get("cases"):
            return
        try:
            cases_table.metadata.create_all(self.cases)
            insights_metadata.create_all(self.cases)
        except SQLAlchemyError as error:
            raise StoreUnavailable(_first_line(error)) from None
        ensure_indexes(self.cases, CASE_INDEXES)
        self._indexed["cases"] = True

    def read(self, engine: Engine, work: Any) -> Any:
        """Run ``work(connection)``; a database failure is StoreUnavailable."""
        try:
            with engine.connect() as connection:
                return work(connection)
        except SQLAlchemyError as error:
            raise StoreUnavailable(_first_line(error)) from None

    def write(self, engine: Engine, work: Any) -> Any:
        """Run ``work(connection)`` in one transaction."""
        try:
            with engine.begin() as connection:
                return work(connection)
        except SQLAlchemyError as error:
            raise StoreUnavailable(_first_line(error)) from None


def stores_from_settings(settings: Any = None) -> Stores:
    """The one place that picks the two stores from the configuration."""
    if settings is None:
        from settings import insights_settings

        settings = insights_settings()
    return Stores.from_urls(settings.tracker_store_url, settings.case_store_url)


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def ensure_indexes(engine: Engine, indexes: Sequence[IndexSpec]) -> List[str]:
    """Create the missing indexes; the names of those created.

    PostgreSQL builds them CONCURRENTLY (Rasa keeps writing meanwhile), outside
    a transaction; an index left invalid by a build that failed half-way is
    dropped and built again. Two processes doing this at once: the loser's
    "already exists" is ignored.
    """
    created = []
    for index in indexes:
        try:
            if _create_index(engine, index):
                created.append(index.name)
        except SQLAlchemyError as error:
            if _index_valid(engine, index.name):
                continue  # another process built it meanwhile
            raise StoreUnavailable(_first_line(error)) from None
    if created:
        logger.info("insights: created indexes %s", ", ".join(created))
    return created


def _create_index(engine: Engine, index: IndexSpec) -> bool:
    valid = _index_valid(engine, index.name)
    if valid:
        return False
    if not is_postgres(engine):
        with engine.begin() as connection:
            connection.execute(sa.text(index.sql(engine)))
        return True
    with engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        # Building over a large table takes longer than a query may.
        autocommit.execute(sa.text("SET statement_timeout = 0"))
        if valid is False:
            autocommit.execute(
                sa.text(f"DROP INDEX CONCURRENTLY IF EXISTS {index.name}")
            )
        autocommit.execute(sa.text(index.sql(engine, concurrently=True)))
        autocommit.execute(sa.text("RESET statement_timeout"))
    return True


def _index_valid(engine: Engine, name: str) -> Optional[bool]:
    """PostgreSQL: True/False for a valid/invalid index, None when missing."""
    if not is_postgres(engine):
        with engine.connect() as connection:
            found = connection.execute(
                sa.text("SELECT 1 FROM sqlite_master WHERE type='index' AND name=:n"),
                {"n": name},
            ).first()
        return True if found else None
    with engine.connect() as connection:
        row = connection.execute(
            sa.text(
                "SELECT i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = :n"
            ),
            {"n": name},
        ).first()
    return None if row is None else bool(row[0])
