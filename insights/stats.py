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
import functools
import io
import json
import math
import statistics
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import sqlalchemy as sa

from actions.services.cases import OUTCOMES, cases_table, outcomes_table, status_table
from insights.rollup import (
    SECONDS_A_DAY,
    clarify_runs,
    day_number,
    ensure_rollups,
    first_open_day,
    read_user_messages,
)
from insights.stores import (
    Stores,
    conversations_table,
    day_intents_table,
    day_senders_table,
    db_time,
    epoch_day,
    events_table,
    is_postgres,
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
# Conversation ids per IN (...) list.
CHUNK = 5000
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
    stores: Stores,
    start: date,
    end: date,
    channel: Optional[str] = None,
    now: Optional[datetime] = None,
) -> Dict[str, Any]:
    """Every figure of the insights page for ``start``..``end`` (UTC, inclusive).

    Closed days are read from their rollups (insights/rollup.py; rolled up
    here first if not yet), the others from the events.
    """
    check_range(start, end, channel)
    ensure_rollups(stores, now)
    events = _event_figures(stores, start, end, channel, first_open_day(now))
    members = _Members(stores, channel, events["live_senders"]) if channel else None
    outcomes = _outcome_figures(stores, start, end, members)
    cases = _case_figures(stores, start, end, members)

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
    for offset in range((end - start).days + 1):
        day = start + timedelta(days=offset)
        people, messages = events["per_day"].get((day - EPOCH).days, (0, 0))
        ended = outcomes["per_day"].get(day.isoformat(), Counter())
        per_day.append(
            {
                "date": day.isoformat(),
                "conversations": people,
                "user_messages": messages,
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


# --- events: rollups of closed days, the events of the others ---------------


def _event_figures(
    stores: Stores,
    start: date,
    end: date,
    channel: Optional[str],
    open_day: int,
) -> Dict[str, Any]:
    """Conversations, messages, intents and "did you mean" runs."""
    first, last = (start - EPOCH).days, (end - EPOCH).days
    found: Dict[str, Any] = {
        "conversations": 0,
        "user_messages": 0,
        "intents": Counter(),
        "clarify_runs": 0,
        "per_day": {},
        "live_senders": set(),
    }
    if not stores.ready_tracker():
        return found
    closed_last = min(last, open_day - 1)
    rolled: Set[str] = set()
    if first <= closed_last:
        _rolled_up_figures(stores, first, closed_last, channel, found)
    live_first = max(first, open_day)
    if live_first <= last:
        live = _live_figures(stores, live_first, last, channel)
        found["user_messages"] += live["user_messages"]
        found["clarify_runs"] += live["clarify_runs"]
        found["intents"].update(live["intents"])
        found["per_day"].update(live["per_day"])
        found["live_senders"] = live["senders"]
        if first <= closed_last:
            rolled = _rolled_up_among(
                stores, first, closed_last, channel, live["senders"]
            )
        found["conversations"] += len(live["senders"] - rolled)
    return found


def _sender_filter(first: int, last: int, channel: Optional[str]) -> Any:
    senders = day_senders_table.c
    where = sa.and_(
        senders.day >= first, senders.day <= last, senders.user_messages > 0
    )
    return sa.and_(where, senders.channel == channel) if channel else where


def _rolled_up_figures(
    stores: Stores, first: int, last: int, channel: Optional[str], found: Dict[str, Any]
) -> None:
    senders, intents = day_senders_table.c, day_intents_table.c
    where = _sender_filter(first, last, channel)
    per_day = (
        sa.select(
            senders.day,
            sa.func.count(),
            sa.func.sum(senders.user_messages),
        )
        .where(where)
        .group_by(senders.day)
    )
    # Counted over the grouped senders: PostgreSQL hashes a GROUP BY, where
    # COUNT(DISTINCT) would sort.
    grouped = sa.select(senders.sender_id).where(where).group_by(senders.sender_id)
    distinct = sa.select(sa.func.count()).select_from(grouped.subquery())
    clarify_where = sa.and_(senders.day >= first, senders.day <= last)
    if channel:
        clarify_where = sa.and_(clarify_where, senders.channel == channel)
    clarifies = sa.select(sa.func.sum(senders.clarifies)).where(clarify_where)
    intent_where = sa.and_(intents.day >= first, intents.day <= last)
    if channel:
        intent_where = sa.and_(intent_where, intents.channel == channel)
    per_intent = (
        sa.select(intents.intent_name, sa.func.sum(intents.messages))
        .where(intent_where)
        .group_by(intents.intent_name)
    )

    def read(connection: sa.engine.Connection) -> None:
        for day, people, messages in connection.execute(per_day):
            found["per_day"][int(day)] = (int(people), int(messages or 0))
            found["user_messages"] += int(messages or 0)
        found["conversations"] += int(connection.execute(distinct).scalar_one())
        found["clarify_runs"] += int(connection.execute(clarifies).scalar() or 0)
        for intent, count in connection.execute(per_intent):
            found["intents"][str(intent or "unknown")] += int(count or 0)

    stores.read(stores.cases, read)


def _rolled_up_among(
    stores: Stores, first: int, last: int, channel: Optional[str], among: Set[str]
) -> Set[str]:
    """Which of ``among`` wrote on a rolled-up day of the range."""
    senders = day_senders_table.c
    found: Set[str] = set()
    ordered = sorted(among)
    for index in range(0, len(ordered), CHUNK):
        query = (
            sa.select(senders.sender_id)
            .where(_sender_filter(first, last, channel))
            .where(senders.sender_id.in_(ordered[index : index + CHUNK]))
            .distinct()
        )
        rows = stores.read(stores.cases, lambda c, q=query: c.execute(q).all())
        found |= {row[0] for row in rows}
    return found


def _live_figures(
    stores: Stores, first: int, last: int, channel: Optional[str]
) -> Dict[str, Any]:
    """The figures of days not rolled up yet, from the events."""
    since, until = first * SECONDS_A_DAY, (last + 1) * SECONDS_A_DAY
    if channel is not None:
        return _live_channel_figures(stores, since, until, channel)
    engine = stores.tracker
    events = events_table.c
    user = sa.and_(
        events.type_name == "user",
        events.timestamp >= since,
        events.timestamp < until,
    )
    day = epoch_day(engine, events.timestamp).label("day")
    per_day_query = (
        sa.select(day, sa.func.count(sa.distinct(events.sender_id)), sa.func.count())
        .where(user)
        .group_by(day)
    )
    intents_query = (
        sa.select(events.intent_name, sa.func.count())
        .where(user)
        .group_by(events.intent_name)
    )
    clarify_query = (
        sa.select(sa.func.count())
        .select_from(events_table)
        .where(
            events.action_name == CLARIFY_ACTION,
            events.timestamp >= since,
            events.timestamp < until,
            events.type_name == "action",
        )
    )
    senders_query = sa.select(events.sender_id).where(user).distinct()

    def read(connection: sa.engine.Connection) -> Dict[str, Any]:
        per_day = {
            int(number): (int(people), int(count))
            for number, people, count in connection.execute(per_day_query)
        }
        return {
            "per_day": per_day,
            "user_messages": sum(count for _, count in per_day.values()),
            "intents": Counter(
                {
                    str(name or "unknown"): int(count)
                    for name, count in connection.execute(intents_query)
                }
            ),
            "clarify_runs": int(connection.execute(clarify_query).scalar_one()),
            "senders": {row[0] for row in connection.execute(senders_query)},
        }

    result: Dict[str, Any] = stores.read(engine, read)
    return result


def _live_channel_figures(
    stores: Stores, since: float, until: float, channel: str
) -> Dict[str, Any]:
    """As _live_figures for one channel.

    Each event's channel is read in Python (a day or two of events).
    """
    messages = [
        m for m in read_user_messages(stores, since, until) if m.channel == channel
    ]
    senders = {m.sender_id for m in messages}
    people: Dict[int, Set[str]] = {}
    for message in messages:
        people.setdefault(day_number(message.timestamp), set()).add(message.sender_id)
    counts = Counter(day_number(m.timestamp) for m in messages)
    return {
        "per_day": {day: (len(people[day]), counts[day]) for day in people},
        "user_messages": len(messages),
        "intents": Counter(str(m.intent_name or "unknown") for m in messages),
        "clarify_runs": sum(
            sender in senders for sender, _ in clarify_runs(stores, since, until)
        ),
        "senders": senders,
    }


# --- outcomes and cases (the case store) ------------------------------------


class _Members:
    """A channel's conversations, as conditions on a conversation id column.

    The rolled-up days say which channel each conversation is on
    (``insights_conversations``); the conversations seen only on days not
    rolled up yet come from the events. The conditions select disjoint sets:
    their counts add up.
    """

    def __init__(self, stores: Stores, channel: str, live: Set[str]) -> None:
        self.channel = channel
        known = conversations_table.c
        ordered = sorted(live)
        seen: Set[str] = set()
        for index in range(0, len(ordered), CHUNK):
            query = sa.select(known.conversation_id).where(
                known.conversation_id.in_(ordered[index : index + CHUNK])
            )
            rows = stores.read(stores.cases, lambda c, q=query: c.execute(q).all())
            seen |= {row[0] for row in rows}
        self.unknown = sorted(set(ordered) - seen)

    def conditions(self, column: Any) -> List[Any]:
        """Conditions on ``column`` whose rows together are the channel's."""
        known = conversations_table.c
        rolled = column.in_(
            sa.select(known.conversation_id).where(known.channel == self.channel)
        )
        chunks = [
            self.unknown[index : index + CHUNK]
            for index in range(0, len(self.unknown), CHUNK)
        ]
        if not chunks:
            return [rolled]
        return [sa.or_(rolled, column.in_(chunks[0]))] + [
            column.in_(chunk) for chunk in chunks[1:]
        ]


def _each(members: Optional[_Members], column: Any) -> List[Any]:
    """The conditions to sum over: none (everything) or the channel's."""
    return [sa.true()] if members is None else members.conditions(column)


def _outcome_figures(
    stores: Stores, start: date, end: date, members: Optional[_Members]
) -> Dict[str, Any]:
    """Outcomes, ratings and causes of the diagnoses that ended in the range."""
    stores.ready_cases()
    engine = stores.cases
    outcomes = outcomes_table.c
    since, until = utc_moment(start), utc_moment(end + timedelta(days=1))
    counts: Counter[str] = Counter({outcome: 0 for outcome in OUTCOMES})
    ratings: Counter[int] = Counter({score: 0 for score in RATINGS})
    causes: Counter[str] = Counter()
    per_day: Dict[str, Counter[str]] = {}
    for condition in _each(members, outcomes.conversation_id):
        where = sa.and_(
            outcomes.updated_at >= db_time(engine, since),
            outcomes.updated_at < db_time(engine, until),
            condition,
        )
        rows = sa.select(
            outcomes.outcome,
            outcomes.rating,
            _day_text(engine, outcomes.updated_at).label("day"),
            outcomes.causes,
        ).where(where)
        inner = rows.subquery()
        if members is None:
            # Two passes on the covering index, each with a small result.
            grouped = sa.select(
                inner.c.outcome,
                inner.c.rating,
                inner.c.day,
                sa.literal_column("NULL"),
                sa.func.count(),
            ).group_by(inner.c.outcome, inner.c.rating, inner.c.day)
            by_causes = (
                sa.select(outcomes.causes, sa.func.count())
                .where(where)
                .group_by(outcomes.causes)
            )
        else:
            # The channel's conversations are looked up once, in one pass.
            grouped = sa.select(
                inner.c.outcome,
                inner.c.rating,
                inner.c.day,
                inner.c.causes,
                sa.func.count(),
            ).group_by(inner.c.outcome, inner.c.rating, inner.c.day, inner.c.causes)
            by_causes = None

        def read(
            connection: sa.engine.Connection,
            grouped: Any = grouped,
            by: Any = by_causes,
        ) -> Tuple[List[Any], List[Any]]:
            found = connection.execute(grouped).all()
            return found, (connection.execute(by).all() if by is not None else [])

        outcome_rows, cause_rows = stores.read(engine, read)
        for outcome, rating, day, cause_text, count in outcome_rows:
            if outcome not in OUTCOMES:
                continue
            counts[outcome] += count
            per_day.setdefault(str(day)[:10], Counter())[outcome] += count
            if rating in RATINGS:
                ratings[int(rating)] += count
            if by_causes is None:
                cause_rows.append((cause_text, count))
        for cause_text, count in cause_rows:
            for cause in _causes(cause_text):
                causes[cause] += count
    return {
        "outcomes": {outcome: counts[outcome] for outcome in OUTCOMES},
        "ratings": ratings,
        "causes": causes,
        "per_day": per_day,
    }


@functools.lru_cache(maxsize=4096)
def _causes(text: Optional[str]) -> Tuple[str, ...]:
    """The distinct cause codes of an outcome row (a JSON list)."""
    try:
        found = json.loads(text or "[]")
    except ValueError:
        return ()
    if not isinstance(found, list):
        return ()
    return tuple(sorted({str(cause) for cause in found if cause}))


def _day_text(engine: sa.engine.Engine, column: Any) -> Any:
    """SQL: the UTC date of a case-store time as YYYY-MM-DD text."""
    if is_postgres(engine):
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")
    return sa.func.substr(column, 1, 10)


def _reason(engine: sa.engine.Engine) -> Any:
    """SQL: why a case was opened (handoff_reason, read from the summary text).

    The summary is json.dumps of actions/handoff.py's dict: a user's words in
    it have their quotes escaped, so these patterns match only its own keys.
    """
    summary = cases_table.c.summary
    return sa.case(
        (status_table.c.scam == sa.true(), "scam"),
        (summary.contains('"scam_reported": true'), "scam"),
        (
            sa.or_(
                summary.contains('"answer": "cannot"'),
                summary.contains('"recheck": "pending"'),
            ),
            "after_failed_fix",
        ),
        else_="requested",
    )


def _reply_seconds(engine: sa.engine.Engine) -> Any:
    """SQL: seconds from a case's opening to its first agent reply."""
    status = status_table.c
    if is_postgres(engine):
        return sa.func.extract("epoch", status.first_reply_at - status.created_at)
    return (
        sa.func.julianday(status.first_reply_at) - sa.func.julianday(status.created_at)
    ) * 86400.0


def _case_figures(
    stores: Stores, start: date, end: date, members: Optional[_Members]
) -> Dict[str, Any]:
    """Why cases were opened in the range, and how long the first reply took."""
    stores.ready_cases()
    engine = stores.cases
    since, until = utc_moment(start), utc_moment(end + timedelta(days=1))
    joined = cases_table.outerjoin(
        status_table, status_table.c.case_id == cases_table.c.case_id
    )
    reasons: Counter[str] = Counter()
    waits: List[float] = []
    for condition in _each(members, cases_table.c.conversation_id):
        where = sa.and_(
            cases_table.c.created_at >= db_time(engine, since),
            cases_table.c.created_at < db_time(engine, until),
            condition,
        )
        # One row per case (thousands, not the outcomes' tens of thousands).
        per_case = (
            sa.select(_reason(engine), _reply_seconds(engine))
            .select_from(joined)
            .where(where)
        )
        rows = stores.read(engine, lambda c, q=per_case: c.execute(q).all())
        for reason, seconds in rows:
            reasons[str(reason)] += 1
            if seconds is not None:
                waits.append(round(float(seconds), 3))
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
