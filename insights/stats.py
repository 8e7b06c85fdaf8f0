"""The figures of the insights page, by SQL over the tracker and case stores.

``stats(stores, start, end, channel)`` returns one JSON-able dict; every
figure is defined in docs/insights.md ("Figures"). In short:

* the range is inclusive, in UTC dates, and applies to each figure's own
  moment: an event's timestamp, an outcome's last change (``updated_at``:
  when the diagnosis ended or was rated), a case's opening;
* the channel is the ``input_channel`` of the user's messages: an outcome or
  a case counts for a channel when its conversation wrote on that channel
  within the range;
* rates are fractions (None when nothing was counted), each also given with
  its numerator and denominator under ``rates``.

The tracker store and the case store may be different databases: each query
reads one of them; the channel's conversations are carried over in Python.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

import sqlalchemy as sa

from actions.services.cases import OUTCOMES, cases_table, outcomes_table, status_table
from insights.stores import (
    Stores,
    aware,
    channel_of,
    db_time,
    epoch_day,
    events_table,
    utc_moment,
)

# The NLU's fallback intent and the "did you mean" action (config.yml,
# actions/clarify.py).
FALLBACK_INTENT = "nlu_fallback"
CLARIFY_ACTION = "action_clarify_intent"
# The longest range one request may ask for (days).
MAX_RANGE_DAYS = 400
RATINGS = (1, 2, 3, 4, 5)
# Why a case was opened, first match wins (docs/insights.md "Handoff reasons").
HANDOFF_REASONS = ("scam", "after_failed_fix", "requested")
# The CSV tables of stats_csv.
CSV_TABLES = ("per_day", "causes", "intents", "csat", "handoff_reasons")
MAX_CHANNEL_CHARS = 64
EPOCH = date(1970, 1, 1)


class StatsQueryError(ValueError):
    """A request for figures that cannot be answered (bad dates, range, table)."""


def parse_query(
    params: Mapping[str, Any], today: Optional[date] = None
) -> Tuple[date, date, Optional[str]]:
    """``from``, ``to`` (YYYY-MM-DD) and ``channel`` of a request.

    Missing dates: the last 30 days up to today (UTC). Raises StatsQueryError
    with a message a caller can show (an API answers 400 with it).
    """
    today = today or datetime.utcnow().date()
    end = _date(params.get("to"), "to", today)
    start = _date(params.get("from"), "from", end - timedelta(days=29))
    channel = params.get("channel") or None
    if channel is not None:
        channel = str(channel).strip() or None
    check_range(start, end, channel)
    return start, end, channel


def _date(raw: Any, name: str, default: date) -> date:
    if raw in (None, ""):
        return default
    try:
        return date.fromisoformat(str(raw).strip())
    except ValueError:
        raise StatsQueryError(f"{name} must be a date like 2024-05-31") from None


def check_range(start: date, end: date, channel: Optional[str]) -> None:
    """Refuse a reversed or too long range, or a channel name that cannot be one."""
    if start > end:
        raise StatsQueryError("from must not be after to")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise StatsQueryError(f"the range may span at most {MAX_RANGE_DAYS} days")
    if channel is not None and (
        len(channel) > MAX_CHANNEL_CHARS or not channel.isprintable()
    ):
        raise StatsQueryError(
            f"channel must be a channel name (at most {MAX_CHANNEL_CHARS} characters)"
        )


def rate(numerator: int, denominator: int) -> Dict[str, Any]:
    """A rate with its counts; None when there was nothing to count."""
    return {
        "rate": numerator / denominator if denominator else None,
        "numerator": numerator,
        "denominator": denominator,
    }


def percentile(sorted_values: Sequence[float], fraction: float) -> Optional[float]:
    """Nearest-rank percentile: the smallest value with ``fraction`` at or below."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return float(sorted_values[rank - 1])


def handoff_reason(summary: Mapping[str, Any], scam: bool = False) -> str:
    """Why a case was opened, read from its summary (docs/insights.md).

    ``scam``: the user reported or described a scam. ``after_failed_fix``: a fix
    step the bot proposed failed (the user could not do it, or the store still
    showed the cause after "done"); the bot offers 转人工 there. Otherwise the
    user asked for a person (``requested``).
    """
    if scam or summary.get("scam_reported") is True:
        return "scam"
    for step in summary.get("steps_tried") or []:
        if not isinstance(step, Mapping):
            continue
        if step.get("answer") == "cannot" or step.get("recheck") == "pending":
            return "after_failed_fix"
    return "requested"


def stats(
    stores: Stores, start: date, end: date, channel: Optional[str] = None
) -> Dict[str, Any]:
    """Every figure of the insights page for ``start``..``end`` (UTC, inclusive)."""
    check_range(start, end, channel)
    since, until = utc_moment(start), utc_moment(end + timedelta(days=1))
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    events = _event_figures(stores, since, until, channel)
    conversations = events["senders"] if channel is not None else None
    outcomes = _outcome_figures(stores, since, until, conversations)
    cases = _case_figures(stores, since, until, conversations)

    user_messages = events["user_messages"]
    fallbacks = events["intents"].get(FALLBACK_INTENT, 0)
    diagnoses = sum(outcomes["outcomes"].values())
    ratings = outcomes["ratings"]
    rated = sum(ratings.values())
    rates = {
        "self_service_rate": rate(outcomes["outcomes"]["resolved_by_bot"], diagnoses),
        "handoff_rate": rate(outcomes["outcomes"]["handed_off"], diagnoses),
        "abandon_rate": rate(outcomes["outcomes"]["abandoned"], diagnoses),
        "fallback_rate": rate(fallbacks, user_messages),
        "did_you_mean_rate": rate(events["clarify_runs"], user_messages),
    }
    per_day = []
    for day in days:
        number = (day - EPOCH).days
        conversations_that_day, messages_that_day = events["per_day"].get(
            number, (0, 0)
        )
        ended = outcomes["per_day"].get(day.isoformat(), Counter())
        per_day.append(
            {
                "date": day.isoformat(),
                "conversations": conversations_that_day,
                "user_messages": messages_that_day,
                "diagnoses": sum(ended.values()),
                **{outcome: ended.get(outcome, 0) for outcome in OUTCOMES},
            }
        )
    waits = cases["first_reply_waits"]
    return {
        "range": {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "channel": channel,
            "timezone": "UTC",
        },
        "counts": {
            "conversations": events["conversations"],
            "user_messages": user_messages,
            "diagnosis_conversations": diagnoses,
            **outcomes["outcomes"],
            "ratings": rated,
            "handoff_cases": sum(cases["reasons"].values()),
            "fallbacks": fallbacks,
            "did_you_mean": events["clarify_runs"],
        },
        **{name: figure["rate"] for name, figure in rates.items()},
        "rates": rates,
        "csat_average": (
            sum(score * count for score, count in ratings.items()) / rated
            if rated
            else None
        ),
        "csat_distribution": {str(score): ratings[score] for score in RATINGS},
        "causes": [
            {"cause": cause, "count": count}
            for cause, count in _by_count(outcomes["causes"])
        ],
        "intents": [
            {"intent": intent, "count": count}
            for intent, count in _by_count(events["intents"])
        ],
        "handoff_reasons": {
            reason: cases["reasons"].get(reason, 0) for reason in HANDOFF_REASONS
        },
        "first_reply_seconds": {
            "median": statistics.median(waits) if waits else None,
            "p90": percentile(waits, 0.9),
            "count": len(waits),
        },
        "per_day": per_day,
    }


def _by_count(counter: Mapping[str, int]) -> List[Tuple[str, int]]:
    """Most frequent first; ties by name, so the order is stable."""
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def _event_figures(
    stores: Stores, since: datetime, until: datetime, channel: Optional[str]
) -> Dict[str, Any]:
    """Conversations, messages, intents and "did you mean" runs from the events."""
    empty: Dict[str, Any] = {
        "conversations": 0,
        "user_messages": 0,
        "intents": Counter(),
        "clarify_runs": 0,
        "per_day": {},
        "senders": set(),
    }
    if not stores.ready_tracker():
        return empty
    engine = stores.tracker
    events = events_table.c
    user = sa.and_(
        events.type_name == "user",
        events.timestamp >= since.timestamp(),
        events.timestamp < until.timestamp(),
    )
    if channel is not None:
        user = sa.and_(user, channel_of(engine) == channel)
    day = epoch_day(engine, events.timestamp).label("day")
    per_day_query = (
        sa.select(
            day,
            sa.func.count(sa.distinct(events.sender_id)),
            sa.func.count(),
        )
        .where(user)
        .group_by(day)
    )
    total_query = sa.select(
        sa.func.count(sa.distinct(events.sender_id)), sa.func.count()
    ).where(user)
    intents_query = (
        sa.select(events.intent_name, sa.func.count())
        .where(user)
        .group_by(events.intent_name)
    )
    clarify = sa.and_(
        events.action_name == CLARIFY_ACTION,
        events.timestamp >= since.timestamp(),
        events.timestamp < until.timestamp(),
        events.type_name == "action",
    )
    if channel is not None:
        clarify = sa.and_(
            clarify, events.sender_id.in_(sa.select(events.sender_id).where(user))
        )
    clarify_query = sa.select(sa.func.count()).select_from(events_table).where(clarify)
    senders_query = sa.select(events.sender_id).where(user).distinct()

    def read(connection: sa.engine.Connection) -> Dict[str, Any]:
        conversations, messages = connection.execute(total_query).one()
        found = {
            "conversations": int(conversations),
            "user_messages": int(messages),
            "per_day": {
                int(number): (int(people), int(count))
                for number, people, count in connection.execute(per_day_query)
            },
            "intents": Counter(
                {
                    str(name or "unknown"): int(count)
                    for name, count in connection.execute(intents_query)
                }
            ),
            "clarify_runs": int(connection.execute(clarify_query).scalar_one()),
            "senders": set(),
        }
        if channel is not None:
            found["senders"] = {row[0] for row in connection.execute(senders_query)}
        return found

    result: Dict[str, Any] = stores.read(engine, read)
    return result


def _outcome_figures(
    stores: Stores,
    since: datetime,
    until: datetime,
    conversations: Optional[Set[str]],
) -> Dict[str, Any]:
    """Outcomes, ratings and causes of the diagnoses that ended in the range."""
    stores.ready_cases()
    engine = stores.cases
    outcomes = outcomes_table.c
    in_range = sa.and_(
        outcomes.updated_at >= db_time(engine, since),
        outcomes.updated_at < db_time(engine, until),
    )
    if conversations is None:
        # Few distinct rows: the database counts.
        query = (
            sa.select(
                outcomes.outcome,
                outcomes.rating,
                outcomes.causes,
                _day_text(engine, outcomes.updated_at),
                sa.func.count(),
            )
            .where(in_range)
            .group_by(
                outcomes.outcome,
                outcomes.rating,
                outcomes.causes,
                _day_text(engine, outcomes.updated_at),
            )
        )
        rows: Iterable[Tuple[Any, ...]] = stores.read(
            engine, lambda c: c.execute(query).all()
        )
    else:
        query = sa.select(
            outcomes.conversation_id,
            outcomes.outcome,
            outcomes.rating,
            outcomes.causes,
            _day_text(engine, outcomes.updated_at),
        ).where(in_range)
        found = stores.read(engine, lambda c: c.execute(query).all())
        rows = [
            (outcome, rating, causes, day, 1)
            for conversation, outcome, rating, causes, day in found
            if conversation in conversations
        ]
    counts: Counter[str] = Counter({outcome: 0 for outcome in OUTCOMES})
    ratings: Counter[int] = Counter({score: 0 for score in RATINGS})
    causes: Counter[str] = Counter()
    per_day: Dict[str, Counter[str]] = {}
    parsed: Dict[str, List[str]] = {}
    for outcome, rating, cause_text, day, count in rows:
        if outcome not in OUTCOMES:
            continue
        counts[outcome] += count
        per_day.setdefault(str(day)[:10], Counter())[outcome] += count
        if rating in RATINGS:
            ratings[int(rating)] += count
        if cause_text not in parsed:
            parsed[cause_text] = _causes(cause_text)
        for cause in parsed[cause_text]:
            causes[cause] += count
    return {
        "outcomes": {outcome: counts[outcome] for outcome in OUTCOMES},
        "ratings": ratings,
        "causes": causes,
        "per_day": per_day,
    }


def _causes(text: Optional[str]) -> List[str]:
    """The distinct cause codes of an outcome row (a JSON list)."""
    try:
        found = json.loads(text or "[]")
    except ValueError:
        return []
    if not isinstance(found, list):
        return []
    return sorted({str(cause) for cause in found if cause})


def _day_text(engine: sa.engine.Engine, column: Any) -> Any:
    """SQL: the UTC date of a case-store time as YYYY-MM-DD text."""
    if engine.dialect.name == "postgresql":
        return sa.func.to_char(
            sa.func.timezone(sa.literal_column("'UTC'"), column),
            sa.literal_column("'YYYY-MM-DD'"),
        )
    return sa.func.substr(column, 1, 10)


def _case_figures(
    stores: Stores,
    since: datetime,
    until: datetime,
    conversations: Optional[Set[str]],
) -> Dict[str, Any]:
    """Why cases were opened in the range, and how long the first reply took."""
    stores.ready_cases()
    engine = stores.cases
    status = status_table.c
    query = (
        sa.select(
            cases_table.c.conversation_id,
            cases_table.c.summary,
            cases_table.c.created_at,
            status.scam,
            status.first_reply_at,
        )
        .select_from(
            cases_table.outerjoin(status_table, status.case_id == cases_table.c.case_id)
        )
        .where(cases_table.c.created_at >= db_time(engine, since))
        .where(cases_table.c.created_at < db_time(engine, until))
    )
    rows = stores.read(engine, lambda c: c.execute(query).all())
    reasons: Counter[str] = Counter()
    waits = []
    for conversation, summary_text, created, scam, first_reply in rows:
        if conversations is not None and conversation not in conversations:
            continue
        try:
            summary = json.loads(summary_text or "{}")
        except ValueError:
            summary = {}
        if not isinstance(summary, dict):
            summary = {}
        reasons[handoff_reason(summary, bool(scam))] += 1
        if first_reply is not None and created is not None:
            waits.append((aware(first_reply) - aware(created)).total_seconds())
    return {"reasons": reasons, "first_reply_waits": sorted(waits)}


def stats_csv(figures: Mapping[str, Any], table: str) -> str:
    """One table of ``stats()`` as CSV text (a header row, then the rows)."""
    rows: List[List[Any]]
    if table == "per_day":
        header = ["date", "conversations", "user_messages", "diagnoses", *OUTCOMES]
        rows = [[day[column] for column in header] for day in figures["per_day"]]
    elif table == "causes":
        header = ["cause", "count"]
        rows = [[item["cause"], item["count"]] for item in figures["causes"]]
    elif table == "intents":
        header = ["intent", "count"]
        rows = [[item["intent"], item["count"]] for item in figures["intents"]]
    elif table == "csat":
        header = ["rating", "count"]
        rows = [[score, count] for score, count in figures["csat_distribution"].items()]
    elif table == "handoff_reasons":
        header = ["reason", "count"]
        rows = [[reason, count] for reason, count in figures["handoff_reasons"].items()]
    else:
        raise StatsQueryError(f"table must be one of {', '.join(CSV_TABLES)}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_csv_safe(value) for value in row] for row in rows)
    return out.getvalue()


def _csv_safe(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula is quoted as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
