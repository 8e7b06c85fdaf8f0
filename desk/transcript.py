"""A conversation's transcript, read with SQL from Rasa's tracker store.

Rasa's SQLTrackerStore keeps one row per event in its ``events`` table (id,
sender_id, type_name, timestamp, intent_name, action_name, data = the event's
JSON). The transcript is the ``user`` and ``bot`` events, in order; a bot event
whose ``metadata.human_agent`` is set is an agent's message (desk/relay.py puts
it there). Actions, slots and the rest are left out. The user's text is masked
already (the input gate masks it before Rasa stores it), and so is an agent's
(web/agent_api.py masks it before the relay sends it).

Each entry: ``{id, at, from: user|bot|agent, text, agent_id?, agent_name?,
intent?}``; ``id`` is the event's row id, so ``after=<id>`` continues a live
stream where it stopped.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from actions.services.sql import StoreUnavailable, engine_for

# The whole transcript of a case view is at most this many messages (the
# latest); a live poll hands on at most this many at once.
MAX_ENTRIES = 1000
STREAM_BATCH = 200

events_table = sa.table(
    "events",
    sa.column("id", sa.Integer),
    sa.column("sender_id", sa.String),
    sa.column("type_name", sa.String),
    sa.column("timestamp", sa.Float),
    sa.column("data", sa.Text),
)
MESSAGE_EVENTS = ("user", "bot")


def entry(
    event_id: int, type_name: str, timestamp: Optional[float], data: str
) -> Optional[Dict[str, Any]]:
    """One transcript entry from an event row, or None for a message without text."""
    try:
        event = json.loads(data) if data else {}
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    text = event.get("text")
    if not isinstance(text, str) or not text.strip():
        return None
    at = timestamp if isinstance(timestamp, (int, float)) else event.get("timestamp")
    found: Dict[str, Any] = {
        "id": int(event_id),
        "at": (
            datetime.fromtimestamp(float(at), timezone.utc).isoformat()
            if isinstance(at, (int, float))
            else None
        ),
        "from": "user" if type_name == "user" else "bot",
        "text": text,
    }
    if type_name == "user":
        intent = (event.get("parse_data") or {}).get("intent") or {}
        if isinstance(intent, dict) and isinstance(intent.get("name"), str):
            found["intent"] = intent["name"]
        return found
    metadata = event.get("metadata")
    agent = metadata.get("human_agent") if isinstance(metadata, dict) else None
    if isinstance(agent, dict) and agent.get("id"):
        found["from"] = "agent"
        found["agent_id"] = str(agent["id"])
        found["agent_name"] = str(agent.get("name") or agent["id"])
    return found


class TranscriptReader:
    """Reads transcripts from the tracker store's database (never writes)."""

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._table_seen = False

    def entries(
        self, conversation_id: str, after: Optional[int] = None
    ) -> List[Dict[str, Any]]:
        """The conversation's messages in order; only those after event ``after``.

        Without ``after``: the whole transcript (its latest MAX_ENTRIES
        messages). With it: at most STREAM_BATCH messages, the oldest first.
        """
        e = events_table.c
        query = (
            sa.select(e.id, e.type_name, e.timestamp, e.data)
            .where(e.sender_id == conversation_id)
            .where(e.type_name.in_(MESSAGE_EVENTS))
        )
        if after is None:
            query = query.order_by(e.id.desc()).limit(MAX_ENTRIES)
        else:
            query = query.where(e.id > after).order_by(e.id).limit(STREAM_BATCH)
        rows = self._read(query)
        if after is None:
            rows = list(reversed(rows))
        found = (entry(row[0], row[1], row[2], row[3]) for row in rows)
        return [item for item in found if item is not None]

    def last_event_id(self, conversation_id: str) -> int:
        """The id of the conversation's latest message event (0: none yet)."""
        e = events_table.c
        query = (
            sa.select(sa.func.max(e.id))
            .where(e.sender_id == conversation_id)
            .where(e.type_name.in_(MESSAGE_EVENTS))
        )
        rows = self._read(query)
        return int(rows[0][0] or 0) if rows else 0

    def _read(self, query: Any) -> List[Any]:
        try:
            engine = engine_for(self.url, self.timeout_s)
            with engine.connect() as connection:
                if not self._table_seen:
                    # Rasa creates the table when it first starts: before
                    # that, every transcript is empty.
                    if not sa.inspect(connection).has_table("events"):
                        return []
                    self._table_seen = True
                return list(connection.execute(query).all())
        except SQLAlchemyError as error:
            raise StoreUnavailable(str(error).splitlines()[0]) from None
