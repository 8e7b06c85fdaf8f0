"""The SQL tracker store of the production profile, made to survive a database restart.

Rasa's SQLTrackerStore keeps pooled PostgreSQL connections without checking them,
so after the database restarts the next message hits a dead connection and is
lost (the REST channel answers ``[]``). This store is the same class with
``pool_pre_ping``: each checkout tests the connection and reconnects.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs

from bot_server import rasa_patches


class ResilientSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore whose connections are checked before use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        rasa_patches.install()  # Rasa builds the store at start-up
        super().__init__(*args, **kwargs)
        engine: sa.engine.Engine = self.engine  # type: ignore[has-type]
        url = engine.url
        engine.dispose()
        self.engine = sa.create_engine(
            url, pool_pre_ping=True, **create_engine_kwargs(url)
        )
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
