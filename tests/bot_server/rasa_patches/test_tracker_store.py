"""The production tracker store keeps working across a PostgreSQL restart."""

from __future__ import annotations

from pathlib import Path

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot_server.rasa_patches.tracker_store import ResilientSQLTrackerStore
from devtools.servers import throwaway_postgres

DOMAIN = Domain.load(str(Path(__file__).resolve().parents[3] / "domain"))


async def test_a_restart_of_postgresql_costs_no_message() -> None:
    with throwaway_postgres() as pg:
        store = ResilientSQLTrackerStore(
            domain=DOMAIN,
            dialect="postgresql",
            host=pg.server.host,
            port=pg.port,
            db="tracker",
            username="postgres",
            login_db="postgres",
        )
        assert isinstance(store, SQLTrackerStore)
        tracker = DialogueStateTracker.from_events("c1", [UserUttered("第一句")])
        await store.save(tracker)
        assert await store.retrieve("c1") is not None  # the pool holds a connection

        pg.restart()

        tracker.update(UserUttered("第二句"))
        await store.save(tracker)  # a dead pooled connection would raise here
        loaded = await store.retrieve("c1")
        assert loaded is not None
        assert [e.text for e in loaded.events if isinstance(e, UserUttered)] == [
            "第一句",
            "第二句",
        ]
