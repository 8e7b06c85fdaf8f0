"""One call of an action: what it reads, says and sets, gathered in one place.

The diagnosis runs as one form whose validation action does a whole user turn
in one call (read the answer, re-check, diagnose, show the next step). Its
parts (actions/diagnose.py, actions/fixes.py) read and set slots through a
`Turn`, so a later part sees what an earlier one set in the same call, and
the action returns only the slot events worth sending: every slot set on
purpose, none for a slot cleared that was already empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common.intents import latest_intent


@dataclass
class Turn:
    """The tracker, the dispatcher and the slots set so far in this call."""

    tracker: Tracker
    dispatcher: CollectingDispatcher
    changed: Dict[str, Any] = field(default_factory=dict)

    def get(self, slot: str) -> Any:
        """A slot's value, as set earlier in this call or else by the tracker."""
        return self.tracker.get_slot(slot)

    def set(self, **values: Any) -> None:
        """Set slots; each becomes an event, even one set to its current value.

        (Rasa reads a form turn with no slot event as "nothing extracted" and
        hands the message to the rules, so an answer asked again must be set.)
        """
        self.changed.update(values)
        self.tracker.slots.update(values)

    def clear(self, *slots: str) -> None:
        """Empty slots; only those holding something become events."""
        self.set(**{slot: None for slot in slots if self.get(slot) is not None})

    def say(self, response: str, **values: Any) -> None:
        """Send a domain response (every sentence the user sees is one)."""
        self.dispatcher.utter_message(response=response, **values)

    @property
    def text(self) -> str:
        """The latest user message's text."""
        return str(self.tracker.latest_message.get("text") or "")

    @property
    def intent(self) -> str:
        """The latest user message's intent."""
        return latest_intent(self.tracker)

    def events(self) -> List[EventType]:
        """The slot events of this call, in the order they were first set."""
        return [SlotSet(slot, value) for slot, value in self.changed.items()]


def events_since_user(tracker: Tracker) -> List[Dict[str, Any]]:
    """The tracker's events after the latest user message."""
    events = list(tracker.events)
    users = [i for i, event in enumerate(events) if event.get("event") == "user"]
    return events[users[-1] + 1 :] if users else events


def activated_now(tracker: Tracker, form: str) -> bool:
    """Whether `form` was activated after the latest user message (its first call)."""
    return any(
        event.get("event") == "active_loop" and event.get("name") == form
        for event in events_since_user(tracker)
    )


def resumed_after_digression(tracker: Tracker, form: str) -> bool:
    """Whether `form` runs again after a rule answered a digression this turn."""
    return any(
        event.get("event") == "action_execution_rejected" and event.get("name") == form
        for event in events_since_user(tracker)
    )


def requested(tracker: Tracker) -> Optional[str]:
    """The slot the form asked for."""
    value = tracker.get_slot("requested_slot")
    return str(value) if value else None
