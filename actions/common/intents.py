"""Intents the skills treat alike: complaints that start a diagnosis, digressions."""

from __future__ import annotations

from rasa_sdk import Tracker

# The complaints that start a diagnosis, and what the bot first says to each.
# Mid-walk, one of them is a new complaint, never an answer to a fix step.
SITUATIONS = {
    "jiebei_entry_missing": "utter_situation_entry_missing",
    "jiebei_cannot_open": "utter_situation_cannot_open",
    "jiebei_closed": "utter_situation_closed",
    "jiebei_cannot_borrow": "utter_situation_cannot_borrow",
    "jiebei_quota": "utter_situation_quota",
}

# Intents that are their own request, not an answer, unless the text clearly
# answers the question (a rule answers them and the form resumes).
DIGRESSIONS = frozenset(
    {
        "faq",
        "request_human",
        "goodbye",
        "report_scam",
        "bot_challenge",
        "thank",
        "greet",
        "out_of_scope",
    }
)


def latest_intent(tracker: Tracker) -> str:
    """Name of the intent of the latest user message."""
    return str((tracker.latest_message.get("intent") or {}).get("name") or "")
