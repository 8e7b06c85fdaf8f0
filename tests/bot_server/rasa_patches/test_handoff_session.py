"""A conversation paused by a handoff stays paused in a new session
(bot_server/rasa_patches/handoff_session.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

from rasa.core.actions.action import ActionSessionStart
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ConversationPaused,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot_server import rasa_patches
from bot_server.rasa_patches import handoff_session

DOMAIN = Domain.load(str(Path(__file__).resolve().parents[3] / "domain"))


def tracker(paused: bool) -> DialogueStateTracker:
    events: List[Event] = [
        ActionExecuted("action_listen"),
        UserUttered("借呗不见了，我要转人工", {"name": "request_human"}),
        ActionExecuted("action_handoff"),
        SlotSet("case_id", "ABC123"),
    ]
    if paused:
        events.append(ConversationPaused())
    return DialogueStateTracker.from_events("u1", events, slots=DOMAIN.slots)


async def start_session(run: Any, on: DialogueStateTracker) -> List[Event]:
    return await run(
        ActionSessionStart(),
        CollectingOutputChannel(),
        TemplatedNaturalLanguageGenerator(DOMAIN.responses),
        on,
        DOMAIN,
    )


async def test_a_paused_conversation_starts_its_new_session_paused() -> None:
    paused = tracker(paused=True)
    events = await start_session(handoff_session.run, paused)
    assert isinstance(events[0], SessionStarted)
    assert SlotSet("case_id", "ABC123") in events
    assert isinstance(events[-2], ConversationPaused)
    assert events[-1] == ActionExecuted("action_listen")
    for event in events:
        paused.update(event)
    assert paused.is_paused()


async def test_any_other_conversation_gets_rasas_events_unchanged() -> None:
    ours = await start_session(handoff_session.run, tracker(paused=False))
    rasas = await start_session(
        handoff_session.RASA_SESSION_START_RUN, tracker(paused=False)
    )
    assert [type(e) for e in ours] == [type(e) for e in rasas]
    assert not any(isinstance(e, ConversationPaused) for e in ours)


def test_install_swaps_it_in() -> None:
    rasa_patches.install()
    assert ActionSessionStart.run is handoff_session.run
