"""The figures, exactly, from conversations Rasa's tracker store wrote."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timezone
from typing import Any, Dict, List, Tuple

import pytest
import sqlalchemy as sa

from insights.review import unsure_query
from insights.rollup import roll_up_day
from insights.stats import (
    MAX_RANGE_DAYS,
    StatsQueryError,
    handoff_reason,
    parse_query,
    percentile,
    stats,
    stats_csv,
)
from insights.stores import (
    CASE_INDEXES,
    CONFIDENCE_INDEX,
    TRACKER_INDEXES,
    Stores,
    ensure_indexes,
    event_channel,
)
from tests.insights.conftest import World, session, user, write_scenario

DAY = date(2026, 11, 10)


def rate(figures, name):
    found = figures["rates"][name]
    return found["numerator"], found["denominator"], figures[name]


async def test_the_figures_of_one_day_are_exactly_those_conversations(
    world: World,
) -> None:
    await write_scenario(world)
    figures = stats(world.stores, DAY, DAY)

    assert figures["counts"] == {
        "conversations": 6,
        "user_messages": 11,
        "diagnosis_conversations": 5,
        "resolved_by_bot": 1,
        "handed_off": 3,
        "abandoned": 1,
        "ratings": 2,
        "handoff_cases": 3,
        "fallbacks": 1,
        "did_you_mean": 1,
    }
    assert rate(figures, "self_service_rate") == (1, 5, 0.2)
    assert rate(figures, "handoff_rate") == (3, 5, 0.6)
    assert rate(figures, "abandon_rate") == (1, 5, 0.2)
    assert rate(figures, "fallback_rate") == (1, 11, 1 / 11)
    assert rate(figures, "did_you_mean_rate") == (1, 11, 1 / 11)
    assert figures["csat_average"] == 3.5
    assert figures["csat_distribution"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}
    assert figures["causes"] == [
        {"cause": "account_frozen", "count": 2},
        {"cause": "overdue", "count": 1},
    ]
    assert figures["intents"] == [
        {"intent": "jiebei_entry_missing", "count": 3},
        {"intent": "request_human", "count": 3},
        {"intent": "affirm", "count": 1},
        {"intent": "deny", "count": 1},
        {"intent": "goodbye", "count": 1},
        {"intent": "nlu_fallback", "count": 1},
        {"intent": "report_scam", "count": 1},
    ]
    assert figures["handoff_reasons"] == {
        "scam": 1,
        "after_failed_fix": 1,
        "requested": 1,
    }
    assert figures["first_reply_seconds"] == {"median": 60.0, "p90": 90.0, "count": 2}
    assert figures["per_day"] == [
        {
            "date": "2026-11-10",
            "conversations": 6,
            "user_messages": 11,
            "diagnoses": 5,
            "resolved_by_bot": 1,
            "handed_off": 3,
            "abandoned": 1,
        }
    ]
    assert figures["range"] == {
        "from": "2026-11-10",
        "to": "2026-11-10",
        "channel": None,
        "timezone": "UTC",
    }
    assert json.loads(json.dumps(figures)) == figures  # JSON as it is


async def test_a_channel_counts_only_its_conversations(world: World) -> None:
    await write_scenario(world)
    web = stats(world.stores, DAY, DAY, "socketio")
    assert web["counts"]["conversations"] == 4  # A, C, D, F
    assert web["counts"]["user_messages"] == 6
    assert rate(web, "self_service_rate") == (1, 3, 1 / 3)  # A of A, C, F
    assert rate(web, "handoff_rate") == (1, 3, 1 / 3)
    assert rate(web, "did_you_mean_rate") == (1, 6, 1 / 6)
    assert web["csat_average"] == 5
    assert web["causes"] == [{"cause": "account_frozen", "count": 1}]
    assert web["handoff_reasons"] == {"scam": 0, "after_failed_fix": 0, "requested": 1}
    assert web["first_reply_seconds"] == {"median": None, "p90": None, "count": 0}

    rest = stats(world.stores, DAY, DAY, "rest")
    assert rest["counts"]["conversations"] == 2
    assert rate(rest, "handoff_rate") == (2, 2, 1.0)
    assert rate(rest, "did_you_mean_rate") == (0, 5, 0.0)
    assert rest["csat_distribution"]["2"] == 1
    assert rest["handoff_reasons"] == {"scam": 1, "after_failed_fix": 1, "requested": 0}
    assert rest["first_reply_seconds"]["count"] == 2

    nobody = stats(world.stores, DAY, DAY, "wecom")
    assert nobody["counts"]["conversations"] == 0
    assert nobody["self_service_rate"] is None and nobody["csat_average"] is None


async def test_the_range_is_inclusive_utc_days(world: World) -> None:
    await write_scenario(world)
    wide = stats(world.stores, date(2026, 10, 1), DAY)
    assert wide["counts"]["conversations"] == 7
    assert rate(wide, "self_service_rate") == (2, 6, 2 / 6)
    assert wide["csat_distribution"]["1"] == 1
    assert len(wide["per_day"]) == 41
    assert wide["per_day"][0]["conversations"] == 1
    assert wide["per_day"][0]["resolved_by_bot"] == 1
    assert sum(day["conversations"] for day in wide["per_day"]) == 7

    before = stats(world.stores, date(2026, 10, 2), date(2026, 11, 9))
    assert before["counts"]["conversations"] == 0
    assert before["counts"]["diagnosis_conversations"] == 0
    assert before["counts"]["handoff_cases"] == 0


async def test_empty_stores_give_zeros_not_errors(world: World, tmp_path) -> None:
    figures = stats(world.stores, DAY, DAY)  # Rasa's table, no conversation yet
    assert figures["counts"]["conversations"] == 0
    fresh = Stores.from_urls(  # Rasa has not even created its table yet
        f"sqlite:///{tmp_path / 'none.db'}", f"sqlite:///{tmp_path / 'cases2.db'}"
    )
    figures = stats(fresh, DAY, DAY)
    assert figures["counts"]["conversations"] == 0
    assert figures["self_service_rate"] is None
    assert figures["csat_distribution"] == {str(n): 0 for n in range(1, 6)}
    assert figures["intents"] == [] and figures["causes"] == []


def index_names(engine: sa.engine.Engine, table: str) -> set:
    """From the catalog (the inspector leaves expression indexes out)."""
    if engine.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
    else:
        query = "SELECT indexname FROM pg_indexes WHERE tablename = :t"
    with engine.connect() as connection:
        return {row[0] for row in connection.execute(sa.text(query), {"t": table})}


async def test_the_indexes_are_created_once_and_rasa_columns_are_kept(
    world: World,
) -> None:
    await write_scenario(world)
    tracker = sa.create_engine(world.tracker_url)
    columns_before = [c["name"] for c in sa.inspect(tracker).get_columns("events")]
    stats(world.stores, DAY, DAY)
    names = index_names(tracker, "events")
    assert {index.name for index in TRACKER_INDEXES} <= names
    assert ensure_indexes(tracker, TRACKER_INDEXES) == []  # a second process
    stats(world.stores, DAY, DAY)
    assert index_names(tracker, "events") == names
    assert [
        c["name"] for c in sa.inspect(tracker).get_columns("events")
    ] == columns_before
    cases = sa.create_engine(world.case_url)
    for index in CASE_INDEXES:
        assert index.name in index_names(cases, index.table)
    tracker.dispose()
    cases.dispose()


def test_the_review_queue_reads_the_confidence_index(tmp_path) -> None:
    """The query's confidence expression is the index's: with the review
    queue's INDEXED BY, SQLite would refuse the query otherwise."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) "
                "NOT NULL, type_name VARCHAR(255) NOT NULL, timestamp FLOAT, "
                "intent_name VARCHAR(255), action_name VARCHAR(255), data TEXT)"
            )
        )
    ensure_indexes(engine, TRACKER_INDEXES)
    query = unsure_query(engine, 0.9, 0.0)
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as connection:
        plan = " ".join(
            str(row[-1])
            for row in connection.execute(sa.text("EXPLAIN QUERY PLAN " + sql))
        )
    assert CONFIDENCE_INDEX in plan, plan
    engine.dispose()


async def test_what_a_client_puts_in_the_metadata_breaks_nothing(world: World) -> None:
    """Metadata is the client's: NaN (which Python writes and PostgreSQL's json
    refuses) or a key named input_channel must neither fail Rasa's insert (our
    indexes run on it) nor the figures, nor move the conversation's channel."""
    stats(world.stores, DAY, DAY)  # the indexes exist before Rasa writes
    odd = user("借呗额度怎么没了", "jiebei_quota", 0.6, "2026-11-10 16:00:00", "rest")
    odd.metadata = {"input_channel": "wecom", "score": float("nan")}
    await world.conversation("conv_odd", [*session("2026-11-10 16:00:00"), odd])
    assert "NaN" in world_event_data(world, "conv_odd")
    for now in (datetime(2026, 11, 10, 17, tzinfo=timezone.utc), None):  # open, closed
        rest = stats(world.stores, DAY, DAY, "rest", now=now)
        assert rest["counts"]["conversations"] == 1, now
        assert (
            stats(world.stores, DAY, DAY, "wecom", now=now)["counts"]["user_messages"]
            == 0
        )
    from insights.review import review_queue

    assert [item.text for item in review_queue(world.stores, 0.82)] == [
        "借呗额度怎么没了"
    ]


def world_event_data(world: World, sender: str) -> str:
    engine = sa.create_engine(world.tracker_url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT data FROM events WHERE sender_id = :s AND type_name = 'user'"
            ),
            {"s": sender},
        ).all()
    engine.dispose()
    return " ".join(row[0] for row in rows)


async def test_csv_tables(world: World) -> None:
    await write_scenario(world)
    figures = stats(world.stores, DAY, DAY)
    rows = list(csv.reader(io.StringIO(stats_csv(figures, "causes"))))
    assert rows == [["cause", "count"], ["account_frozen", "2"], ["overdue", "1"]]
    per_day = list(csv.reader(io.StringIO(stats_csv(figures, "per_day"))))
    assert per_day[0][:3] == ["date", "conversations", "user_messages"]
    assert per_day[1][:3] == ["2026-11-10", "6", "11"]
    csat = list(csv.reader(io.StringIO(stats_csv(figures, "csat"))))
    assert csat[1:] == [["1", "0"], ["2", "1"], ["3", "0"], ["4", "0"], ["5", "1"]]
    reasons = list(csv.reader(io.StringIO(stats_csv(figures, "handoff_reasons"))))
    assert ["scam", "1"] in reasons
    intents = list(csv.reader(io.StringIO(stats_csv(figures, "intents"))))
    assert intents[1] == ["jiebei_entry_missing", "3"]
    with pytest.raises(StatsQueryError, match="table must be one of"):
        stats_csv(figures, "secrets")


def test_a_formula_in_a_csv_cell_stays_text() -> None:
    figures = {"intents": [{"intent": "=HYPERLINK(1)", "count": 1}]}
    assert "'=HYPERLINK(1)" in stats_csv(figures, "intents")


@pytest.mark.parametrize(
    "params, message",
    [
        ({"from": "2026-13-01"}, "from must be a date"),
        ({"to": "yesterday"}, "to must be a date"),
        ({"from": "2026-11-10", "to": "2026-11-01"}, "must not be after"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, f"at most {MAX_RANGE_DAYS}"),
        ({"channel": "x" * 65}, "channel must be"),
        ({"channel": "a\nb"}, "channel must be"),
    ],
)
def test_bad_queries_are_refused_with_a_reason(params, message) -> None:
    with pytest.raises(StatsQueryError, match=message):
        parse_query(params, today=DAY)


def test_a_query_without_dates_is_the_last_30_days() -> None:
    assert parse_query({}, today=DAY) == (date(2026, 10, 12), DAY, None)
    assert parse_query({"channel": " rest "}, today=DAY)[2] == "rest"


@pytest.mark.parametrize(
    "summary, scam, reason",
    [
        ({"steps_tried": []}, False, "requested"),
        ({}, False, "requested"),
        (
            {"steps_tried": [{"answer": "done", "recheck": "confirmed"}]},
            False,
            "requested",
        ),
        ({"steps_tried": [{"answer": "cannot"}]}, False, "after_failed_fix"),
        (
            {"steps_tried": [{"answer": "done", "recheck": "pending"}]},
            False,
            "after_failed_fix",
        ),
        ({"steps_tried": [{"answer": "cannot"}], "scam_reported": True}, False, "scam"),
        ({}, True, "scam"),
        ({"steps_tried": ["junk"]}, False, "requested"),
    ],
)
def test_handoff_reasons(summary, scam, reason) -> None:
    assert handoff_reason(summary, scam) == reason


REASON_CASES: List[Tuple[Dict[str, Any], str]] = [
    ({"steps_tried": []}, "requested"),
    (
        {
            "steps_tried": [
                {"code": "overdue", "answer": "done", "recheck": "confirmed"}
            ]
        },
        "requested",
    ),
    (
        {"steps_tried": [{"code": "overdue", "answer": "cannot", "recheck": None}]},
        "after_failed_fix",
    ),
    (
        {"steps_tried": [{"code": "overdue", "answer": "done", "recheck": "pending"}]},
        "after_failed_fix",
    ),
    ({"scam_reported": True, "steps_tried": [{"answer": "cannot"}]}, "scam"),
    # a user's words that look like the keys do not count: their quotes are escaped
    ({"user_words": ['"answer": "cannot"', '"scam_reported": true']}, "requested"),
]


async def test_the_database_reads_the_handoff_reason_as_the_rule_says(
    world: World,
) -> None:
    expected = {"scam": 0, "after_failed_fix": 0, "requested": 0}
    for number, (fields, reason) in enumerate(REASON_CASES):
        summary: Dict[str, Any] = {"conversation_id": f"c{number}", "steps_tried": []}
        summary.update(fields)
        assert handoff_reason(summary) == reason
        world.case(f"c{number}", summary, "2026-11-10 10:00:00")
        expected[reason] += 1
    assert stats(world.stores, DAY, DAY)["handoff_reasons"] == expected


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.9) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([float(n) for n in range(1, 11)], 0.9) == 9.0
    assert percentile([float(n) for n in range(1, 12)], 0.9) == 10.0


async def test_open_days_are_read_from_the_events_and_agree_with_the_rollups(
    world: World,
) -> None:
    await write_scenario(world)
    during = datetime(2026, 11, 10, 15, 0, tzinfo=timezone.utc)  # the day is open
    live = stats(world.stores, date(2026, 10, 1), DAY, now=during)
    assert rolled_up(world) == set(range(day_of("2026-10-01"), day_of("2026-11-10")))
    later = stats(world.stores, date(2026, 10, 1), DAY)  # now every day is closed
    assert day_of("2026-11-10") in rolled_up(world)
    assert live == later
    assert later["counts"]["conversations"] == 7
    for channel in ("socketio", "rest"):
        assert stats(world.stores, DAY, DAY, channel, now=during) == stats(
            world.stores, DAY, DAY, channel
        )


async def test_a_conversation_on_a_closed_and_an_open_day_counts_once(
    world: World,
) -> None:
    await write_scenario(world)
    tracker = await world.tracker_store.retrieve_full_tracker("conv_a")
    tracker.update(user("还有个问题", "greet", 0.9, "2026-11-11 09:00:00"))
    await world.tracker_store.save(tracker)
    now = datetime(2026, 11, 11, 12, 0, tzinfo=timezone.utc)
    figures = stats(world.stores, DAY, date(2026, 11, 11), now=now)
    assert figures["counts"]["conversations"] == 6
    assert figures["counts"]["user_messages"] == 12
    assert [d["conversations"] for d in figures["per_day"]] == [6, 1]
    web = stats(world.stores, DAY, date(2026, 11, 11), "socketio", now=now)
    assert web["counts"]["conversations"] == 4
    assert rate(web, "self_service_rate") == (1, 3, 1 / 3)


async def test_a_day_is_rolled_up_once(world: World) -> None:
    await write_scenario(world)
    stores = world.stores
    number = day_of("2026-11-10")
    assert roll_up_day(stores, number) is True
    assert roll_up_day(stores, number) is False  # another process was first
    figures = stats(stores, DAY, DAY)
    assert figures["counts"]["conversations"] == 6


def day_of(text: str) -> int:
    return (date.fromisoformat(text) - date(1970, 1, 1)).days


def rolled_up(world: World) -> set:
    engine = sa.create_engine(world.case_url)
    with engine.connect() as connection:
        found = {
            row[0]
            for row in connection.execute(sa.text("SELECT day FROM insights_days"))
        }
    engine.dispose()
    return found


@pytest.mark.parametrize(
    "event, channel",
    [
        (
            {
                "event": "user",
                "text": 'x "input_channel": "y"',
                "input_channel": "rest",
            },
            "rest",
        ),
        (
            {
                "event": "user",
                "parse_data": {"metadata": {"input_channel": "wecom"}},
                "input_channel": "socketio",
                "metadata": {"input_channel": "wecom", "n": float("nan")},
            },
            "socketio",
        ),
        ({"event": "user", "input_channel": None}, None),
        ({"event": "user", "input_channel": 'a"b'}, 'a"b'),
        ({"event": "bot"}, None),
    ],
)
def test_an_events_channel_is_its_top_level_key(event, channel) -> None:
    assert event_channel(json.dumps(event)) == channel


def test_an_unreadable_event_has_no_channel() -> None:
    assert event_channel("not json") is None and event_channel(None) is None
