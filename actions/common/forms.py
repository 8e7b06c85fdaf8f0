"""Reading a form's answer when the message may be a digression."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from rasa_sdk import Tracker

from actions.common.intents import DIGRESSIONS, latest_intent

# Asking for a person is honoured whatever else the words say: "借呗不见了，
# 我要转人工" at "完成了吗?" is no "not done" (its 不 would read as one).
PERSON_REQUEST = "request_human"


def extract_answer(
    tracker: Tracker, slot: str, parse: Callable[[str], Any]
) -> Dict[str, Optional[Any]]:
    """Fill `slot` from the latest message when it is the slot being asked for.

    A message whose text parses as an answer fills the slot whatever its intent
    ("六百多" is an answer even if the classifier thought otherwise). A message
    that does not parse and has a digression intent fills nothing, so the form
    steps aside and a rule answers it. Anything else is passed on as text for
    validation to ask again.
    """
    if tracker.get_slot("requested_slot") != slot:
        return {}
    if latest_intent(tracker) == PERSON_REQUEST:
        return {}
    text = str(tracker.latest_message.get("text") or "")
    if parse(text) is not None:
        return {slot: text}
    if latest_intent(tracker) in DIGRESSIONS:
        return {}
    return {slot: text}
