"""Hand the conversation to a human with a case summary."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common.blocking import run_blocking
from actions.common.outcomes import UNFINISHED_SLOT, record_outcome
from actions.services.cases import case_store
from actions.services.sql import StoreUnavailable

logger = logging.getLogger(__name__)

# How many of the user's messages the summary quotes (most recent last).
USER_WORDS_KEPT = 20


def case_summary(tracker: Tracker) -> Dict[str, Any]:
    """What a human agent needs to pick the conversation up without re-asking."""
    # Only this conversation's current session (after the last restart/session start).
    starts = [
        i
        for i, e in enumerate(tracker.events)
        if e.get("event") in ("restart", "session_started")
    ]
    current = tracker.events[starts[-1] + 1 :] if starts else tracker.events
    user_events = [e for e in current if e.get("event") == "user"]
    intents = {
        (e.get("parse_data") or {}).get("intent", {}).get("name") for e in user_events
    }
    return {
        "conversation_id": tracker.sender_id,
        "account_id": tracker.get_slot("account_id"),
        "facts_source": tracker.get_slot("facts_source"),
        "problem": tracker.get_slot("problem_text"),
        "causes": tracker.get_slot("findings") or [],
        "current_cause": tracker.get_slot("current_finding"),
        "steps_tried": tracker.get_slot("steps_tried") or [],
        "user_words": [e.get("text") for e in user_events if e.get("text")][
            -USER_WORDS_KEPT:
        ],
        "scam_reported": "report_scam" in intents,
        "created_at": datetime.now(timezone.utc).isoformat(),
    }


class ActionHandoff(Action):
    """Opens a case for a human agent and pauses the bot for this conversation."""

    def name(self) -> Text:
        """Name in the domain."""
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """On a case-store failure, says how to reach a human instead of pausing."""
        summary = case_summary(tracker)
        try:
            case_id = await run_blocking(
                case_store().open_case, tracker.sender_id, summary
            )
        except (StoreUnavailable, asyncio.TimeoutError) as error:
            logger.error("handoff case could not be stored: %s", error or "timeout")
            dispatcher.utter_message(response="utter_handoff_failed")
            return []
        await record_outcome(tracker, "handed_off")
        dispatcher.utter_message(response="utter_handoff", case_id=case_id)
        events: List[EventType] = [SlotSet("case_id", case_id)]
        if tracker.get_slot(UNFINISHED_SLOT):
            # A human has the diagnosis now: nothing left to offer to resume.
            events.append(SlotSet(UNFINISHED_SLOT, False))
        return [*events, ConversationPaused()]
