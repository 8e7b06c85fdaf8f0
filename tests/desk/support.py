"""What the desk's tests share: a fast hasher, a fake relay, cases and Rasa events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Tuple

import sqlalchemy as sa
from argon2 import PasswordHasher

from actions.services.cases import CaseStore
from desk.relay import RelayError

# Argon2 with tiny costs: the tests sign in often; one test checks the real costs.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "a-long-password-1"


@dataclass
class FakeRelay:
    """Records what the desk asks Rasa to do; ``down`` makes every call fail."""

    down: bool = False
    calls: List[Tuple[Any, ...]] = field(default_factory=list)
    closed: bool = False

    def _call(self, *call: Any) -> None:
        if self.down:
            raise RelayError("connection refused (fake)")
        self.calls.append(call)

    async def joined(
        self, conversation_id: str, agent_id: str, agent_name: str
    ) -> None:
        self._call("joined", conversation_id, agent_id, agent_name)

    async def message(
        self, conversation_id: str, text: str, agent_id: str, agent_name: str
    ) -> None:
        self._call("message", conversation_id, text, agent_id, agent_name)

    async def resolved(
        self, conversation_id: str, agent_id: str, agent_name: str
    ) -> None:
        self._call("resolved", conversation_id, agent_id, agent_name)

    async def close(self) -> None:
        self.closed = True


class Clock:
    """A settable clock for idle expiry."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def to_now(self) -> None:
        self.now = datetime.now(timezone.utc)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def open_case(
    url: str,
    conversation_id: str,
    scam: bool = False,
    problem: str = "借呗入口不见了",
    account_id: Optional[str] = "demo_account_frozen",
    channel: Optional[str] = "socketio",
) -> str:
    """A handoff case as the handoff action opens it; its id."""
    summary: Dict[str, Any] = {
        "conversation_id": conversation_id,
        "account_id": account_id,
        "problem": problem,
        "causes": ["account_frozen"],
        "user_words": ["我要转人工"],
    }
    if scam:
        summary["scam_reported"] = True
    return CaseStore(url).open_case(conversation_id, summary, channel=channel)


def tracker_store(url: str) -> Any:
    """Rasa's own SQLTrackerStore on ``url`` (a SQLite file or PostgreSQL)."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    parts = sa.engine.make_url(url)
    if parts.drivername.startswith("sqlite"):
        return SQLTrackerStore(Domain.empty(), dialect="sqlite", db=parts.database)
    return SQLTrackerStore(
        Domain.empty(),
        dialect="postgresql",
        host=parts.host,
        port=parts.port,
        db=parts.database,
        username=parts.username,
        password=parts.password,
    )


async def record(store: Any, sender: str, *events: Any) -> None:
    """Append Rasa events to a conversation, as Rasa stores them."""
    from rasa.shared.core.trackers import DialogueStateTracker

    tracker = await store.retrieve(sender) or DialogueStateTracker(sender, [])
    for event in events:
        tracker.update(event)
    await store.save(tracker)


def user(text: str, intent: str = "human_handoff") -> Any:
    from rasa.shared.core.events import UserUttered

    return UserUttered(
        text,
        parse_data={"intent": {"name": intent, "confidence": 0.9}},
        input_channel="socketio",
    )


def bot(text: str, agent: Optional[Tuple[str, str]] = None) -> Any:
    from rasa.shared.core.events import BotUttered

    metadata = (
        {"human_agent": {"id": agent[0], "name": agent[1]}}
        if agent
        else {"utter_action": "utter_handoff"}
    )
    return BotUttered(text, metadata=metadata)


def noise() -> List[Any]:
    """Events a transcript leaves out."""
    from rasa.shared.core.events import ActionExecuted, SlotSet

    return [ActionExecuted("action_handoff"), SlotSet("case_id", "X")]
