"""The retention purge: idle conversations go whole, active ones stay whole."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from insights.__main__ import main
from insights.retention import purge
from insights.review import labels_table, review_queue, reviewed
from insights.stats import stats
from tests.insights.conftest import (
    World,
    action,
    cli_env,
    session,
    summary,
    user,
    write_scenario,
)

NOW = datetime(2027, 1, 1, tzinfo=timezone.utc)
DAYS = 60  # cutoff 2026-11-02: the scenario's day (11-10) is recent, 10-01 old


async def old_and_mixed(world: World) -> None:
    """Beside the scenario (A-F recent, G old):
    H old events, outcome changed recently   -> kept
    I old events, its case's status changed recently -> kept
    J no events, an old outcome and case       -> purged
    K old events and a recent one              -> kept, every event
    """
    for name in ("conv_h", "conv_i", "conv_k"):
        await world.conversation(
            name,
            [
                *session("2026-09-01 08:00:00"),
                user("借呗不见了", "jiebei_entry_missing", 0.95, "2026-09-01 08:00:01"),
                action("action_diagnose", "2026-09-01 08:00:02"),
            ],
        )
    world.outcome("conv_h", "abandoned", [], "2026-11-20 08:00:00")
    case_i = world.case("conv_i", summary("conv_i"), "2026-09-01 08:01:00")
    engine = sa.create_engine(world.case_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE case_status SET updated_at = :at WHERE case_id = :id"),
            {"at": datetime(2026, 11, 25, tzinfo=timezone.utc), "id": case_i},
        )
    engine.dispose()
    world.outcome("conv_j", "handed_off", [], "2026-09-02 08:00:00")
    world.case("conv_j", summary("conv_j"), "2026-09-02 08:00:00")
    tracker = await world.tracker_store.retrieve_full_tracker("conv_k")
    tracker.update(user("还在吗", "greet", 0.9, "2026-11-20 09:00:00"))
    await world.tracker_store.save(tracker)


def desk_audit(world: World, case_ids) -> None:
    """The desk's audit table (desk/store.py creates it) with a row per case."""
    engine = sa.create_engine(world.case_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE desk_audit (id INTEGER PRIMARY KEY, at TIMESTAMP, "
                "agent_id VARCHAR(64), action VARCHAR(32), case_id VARCHAR(32), "
                "detail TEXT)"
            )
        )
        for number, case_id in enumerate(case_ids, 1):
            connection.execute(
                sa.text(
                    "INSERT INTO desk_audit (id, at, agent_id, action, case_id, detail) "
                    "VALUES (:id, :at, 'agent1', 'claim', :case, '{}')"
                ),
                {"id": number, "at": datetime(2026, 9, 2), "case": case_id},
            )
    engine.dispose()


def senders(world: World) -> dict:
    engine = sa.create_engine(world.tracker_url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT sender_id, COUNT(*) FROM events GROUP BY sender_id")
        ).all()
    engine.dispose()
    return dict(rows)


def column(world: World, table: str, name: str = "conversation_id") -> set:
    engine = sa.create_engine(world.case_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text(f"SELECT {name} FROM {table}")).all()
    engine.dispose()
    return {row[0] for row in rows}


async def test_idle_conversations_are_purged_whole_and_active_ones_kept(
    world: World,
) -> None:
    await write_scenario(world)
    await old_and_mixed(world)
    engine = sa.create_engine(world.case_url)
    with engine.connect() as connection:
        by_conversation = dict(
            connection.execute(
                sa.text("SELECT conversation_id, case_id FROM handoff_cases")
            ).all()
        )
    engine.dispose()
    case_j = by_conversation["conv_j"]
    desk_audit(world, [case_j, by_conversation["conv_b"]])
    before = senders(world)
    k_events = before["conv_k"]
    october = date(2026, 10, 1)
    assert stats(world.stores, october, october)["counts"]["conversations"] == 1  # G
    september = stats(world.stores, date(2026, 9, 1), date(2026, 9, 30))
    assert september["counts"]["conversations"] == 3  # H, I, K

    counts = purge(world.stores, DAYS, now=NOW)

    # the rolled-up days forget the purged conversation, keep the others
    assert stats(world.stores, october, october)["counts"]["conversations"] == 0
    after = stats(world.stores, date(2026, 9, 1), date(2026, 9, 30))
    assert after["per_day"][0] == september["per_day"][0]  # H, I, K wrote on 09-01
    assert after["counts"]["handed_off"] == 0  # J's outcome (09-02) went

    assert counts["cutoff"] == "2026-11-02T00:00:00+00:00"
    after = senders(world)
    assert "conv_g" not in after
    for kept in ("conv_a", "conv_b", "conv_c", "conv_d", "conv_e", "conv_f",
                 "conv_h", "conv_i"):  # fmt: skip
        assert after[kept] == before[kept], kept
    assert after["conv_k"] == k_events  # its old events too
    assert "conv_g" not in column(world, "diagnosis_outcomes")
    assert "conv_j" not in column(world, "diagnosis_outcomes")
    assert column(world, "handoff_cases") == {"conv_b", "conv_e", "conv_f", "conv_i"}
    assert column(world, "case_status") == {"conv_b", "conv_e", "conv_f", "conv_i"}
    assert column(world, "desk_audit", "case_id") == {by_conversation["conv_b"]}
    assert {
        k: counts[k]
        for k in (
            "conversations",
            "events",
            "outcomes",
            "cases",
            "case_status",
            "audit",
        )
    } == {
        "conversations": 2,  # G, J
        "events": before["conv_g"],
        "outcomes": 2,
        "cases": 1,
        "case_status": 1,
        "audit": 1,
    }
    again = purge(world.stores, DAYS, now=NOW)
    assert {k: again[k] for k in ("conversations", "events", "outcomes")} == {
        "conversations": 0,
        "events": 0,
        "outcomes": 0,
    }


async def test_labels_outlive_their_conversation(world: World) -> None:
    from insights.review import label_item

    await write_scenario(world)
    engine = sa.create_engine(world.tracker_url)
    with engine.begin() as connection:  # make D's fallback old
        connection.execute(
            sa.text("UPDATE events SET timestamp = timestamp - 86400 * 60 "
                    "WHERE sender_id = 'conv_d'")
        )  # fmt: skip
    engine.dispose()
    quota = next(
        i for i in review_queue(world.stores, 0.82) if i.text == "借呗额度咋整"
    )
    label_item(world.stores, quota.id, "jiebei_quota", "agent1", 0.82)
    purge(world.stores, DAYS, now=NOW)
    assert "conv_d" not in senders(world)
    assert [row["text"] for row in reviewed(world.stores)] == ["借呗额度咋整"]
    assert labels_table.name == "review_labels"


async def test_the_command_prints_the_counts(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """By the clock: one conversation 40 days old, one from yesterday."""
    now = datetime.now(timezone.utc)
    for name, age in (("conv_old", 40), ("conv_new", 1)):
        at = (now - timedelta(days=age)).strftime("%Y-%m-%d %H:%M:%S")
        await world.conversation(
            name, [*session(at), user("借呗不见了", "jiebei_entry_missing", 0.95, at)]
        )
        world.outcome(name, "abandoned", [], at)
    cli_env(world, monkeypatch)
    monkeypatch.setenv("RETENTION_DAYS", "30")
    assert main(["purge", "--days", "50"]) == 0
    out = capsys.readouterr().out
    assert "(retention 50 days)" in out and "conversations: 0" in out
    assert main(["purge"]) == 0
    out = capsys.readouterr().out
    assert "(retention 30 days)" in out
    assert "conversations: 1\n" in out and "outcomes: 1\n" in out
    assert "events: 4\n" in out  # session start, session, listen, the message
    assert set(senders(world)) == {"conv_new"}
    assert main(["purge", "--days", "0"]) == 2
