"""Transcripts read from the events Rasa's own SQLTrackerStore wrote (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from actions.services.sql import StoreUnavailable
from desk.transcript import MAX_ENTRIES, TranscriptReader, entry
from devtools.servers import Postgres
from tests.desk.support import bot, noise, record, tracker_store, user


@pytest.fixture
def postgres_url(postgres: Postgres) -> Iterator[str]:
    name = postgres.create_database()
    try:
        yield postgres.url(name)
    finally:
        postgres.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def tracker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tracker.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def test_user_bot_and_agent_messages_in_order(tracker_url: str) -> None:
    store = tracker_store(tracker_url)
    await record(
        store,
        "conv-1",
        user("借呗不见了，我要转人工 138****5678"),
        *noise(),
        bot("已为您转接人工客服"),
        bot("您好，我是小安", agent=("agent1", "小安")),
    )
    await record(store, "someone-else", user("你好", intent="greet"))
    await record(store, "conv-1", user("好的谢谢", intent="thank"))
    reader = TranscriptReader(tracker_url)
    transcript = reader.entries("conv-1")
    assert [(e["from"], e["text"]) for e in transcript] == [
        ("user", "借呗不见了，我要转人工 138****5678"),
        ("bot", "已为您转接人工客服"),
        ("agent", "您好，我是小安"),
        ("user", "好的谢谢"),
    ]
    first, _, agent, last = transcript
    assert first["intent"] == "human_handoff" and last["intent"] == "thank"
    assert (agent["agent_id"], agent["agent_name"]) == ("agent1", "小安")
    assert "agent_id" not in first and "intent" not in agent
    assert first["at"].endswith("+00:00")
    ids = [e["id"] for e in transcript]
    assert ids == sorted(ids)
    # The live stream: only what came after an event id.
    assert [e["text"] for e in reader.entries("conv-1", after=ids[1])] == [
        "您好，我是小安",
        "好的谢谢",
    ]
    assert reader.entries("conv-1", after=ids[-1]) == []
    assert reader.last_event_id("conv-1") == ids[-1]
    assert reader.entries("nobody") == [] and reader.last_event_id("nobody") == 0


async def test_a_long_conversation_shows_its_latest_messages(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    store = tracker_store(url)
    await record(store, "long", *[user(f"第{i}条") for i in range(MAX_ENTRIES + 5)])
    transcript = TranscriptReader(url).entries("long")
    assert len(transcript) == MAX_ENTRIES
    assert (
        transcript[0]["text"] == "第5条"
        and transcript[-1]["text"] == f"第{MAX_ENTRIES + 4}条"
    )


def test_before_rasa_created_its_table_every_transcript_is_empty(
    tmp_path: Path,
) -> None:
    reader = TranscriptReader(f"sqlite:///{tmp_path / 'none' / 'tracker.db'}")
    assert reader.entries("conv") == [] and reader.last_event_id("conv") == 0


def test_an_unreachable_tracker_store_raises_store_unavailable() -> None:
    reader = TranscriptReader("postgresql://postgres@127.0.0.1:1/none", timeout_s=1)
    with pytest.raises(StoreUnavailable):
        reader.entries("conv")


@pytest.mark.parametrize(
    "data",
    [
        "",
        "not json",
        "[1, 2]",
        '{"event": "bot"}',
        '{"event": "bot", "text": "  "}',
        '{"event": "bot", "text": 5}',
    ],
)
def test_rows_without_a_text_are_left_out(data: str) -> None:
    assert entry(1, "bot", 1.0, data) is None


def test_odd_metadata_does_not_make_an_agent() -> None:
    for metadata in ('"x"', '{"human_agent": "x"}', '{"human_agent": {}}', "null"):
        found = entry(3, "bot", 1.0, f'{{"text": "hi", "metadata": {metadata}}}')
        assert found is not None and found["from"] == "bot", metadata
