"""A handoff outlives Rasa's session expiry.

A conversation handed to a person is paused (``ConversationPaused``) until the
agent desk resumes it (desk/relay.py). Rasa starts a new session after
``session_expiration_time`` (60 min, domain/_shared.yml) of silence, and its
``SessionStarted`` resets the tracker, pause included: a user who waited an
hour (or overnight, outside the desk's hours) would be answered by the bot
again while an agent is about to take the case, or has it. Ours runs Rasa's
``action_session_start`` unchanged and, when the conversation was paused, adds
``ConversationPaused`` after the carried-over slots, so the new session is
paused too. Nothing else changes: a conversation that was not paused gets
exactly Rasa's events.

``install()`` is called by ``bot_server.rasa_patches.install()`` after the
Rasa version check.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, List

from rasa.core.actions.action import ActionSessionStart
from rasa.shared.core.events import ActionExecuted, ConversationPaused, Event

RASA_SESSION_START_RUN: Callable[..., Awaitable[List[Event]]] = ActionSessionStart.run
_installed = False


async def run(
    self: ActionSessionStart,
    output_channel: Any,
    nlg: Any,
    tracker: Any,
    domain: Any,
) -> List[Event]:
    """Rasa's session start; a paused conversation stays paused."""
    events = await RASA_SESSION_START_RUN(self, output_channel, nlg, tracker, domain)
    if tracker.is_paused():
        listen = len(events)
        if events and isinstance(events[-1], ActionExecuted):
            listen -= 1
        events.insert(listen, ConversationPaused())
    return events


def install() -> None:
    """Swap it in once per process."""
    global _installed
    if not _installed:
        setattr(ActionSessionStart, "run", run)  # noqa: B010
        _installed = True
