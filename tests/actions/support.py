"""Helpers of the action tests: what an action said and set, a user message, a record."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common.turn import Turn
from devtools.tracker import make_tracker

DOMAIN: Dict[str, Any] = {}


def responses(dispatcher: CollectingDispatcher) -> List[str]:
    return [m["response"] for m in dispatcher.messages]


def slots(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def user(text: str, intent: str) -> Dict[str, Any]:
    return {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": []}


def fixture_record(account_id: str) -> Dict[str, Any]:
    """A fixture account's record as the account_record slot keeps it."""
    from actions.services.accounts import load_fixtures

    return load_fixtures()[account_id].to_dict()


FORM = "diagnosis_form"
# What Rasa's form logs after the user's message when the form starts, and
# when a rule answered a digression instead of it (it then runs again).
ACTIVATED = {"event": "active_loop", "name": FORM}
REJECTED = {"event": "action_execution_rejected", "name": FORM}


def asked_turn(
    asked: Optional[str],
    text: str,
    intent: str,
    sender: str = "test_user",
    after: Optional[Dict[str, Any]] = None,
    **slot_values: Any,
) -> Tracker:
    """The tracker the diagnosis form's validation gets for a turn.

    `asked` is the requested slot; `after` an event that followed the user's
    message (ACTIVATED, REJECTED), none for a plain answer.
    """
    message = user(text, intent)
    events = [{"event": "user", "text": text, "parse_data": message}]
    return make_tracker(
        sender,
        slots={"requested_slot": asked, **slot_values},
        latest_message=message,
        events=events + ([after] if after else []),
    )


async def run_form(tracker: Tracker) -> Tuple[List[Dict[str, Any]], List[str]]:
    """Run validate_diagnosis_form: its events and the responses it sent."""
    from actions.diagnosis_form import ValidateDiagnosisForm

    dispatcher = CollectingDispatcher()
    events = await ValidateDiagnosisForm().run(dispatcher, tracker, DOMAIN)
    return events, responses(dispatcher)


async def asks(tracker: Tracker) -> Tuple[List[str], Optional[str]]:
    """Run validate_diagnosis_form: what it said and the slot it asks for next."""
    events, said = await run_form(tracker)
    return said, slots(events).get("requested_slot")


def turn_of(sender: str = "test_user", **tracker: Any) -> Turn:
    """A turn of the diagnosis form over a tracker made of `tracker`'s arguments."""
    return Turn(make_tracker(sender, **tracker), CollectingDispatcher())
