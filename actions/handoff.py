"""Hand the conversation to a human with a case summary.

The case goes into the agent desk's queue (actions/services/cases.py); the
user hears the case id and their place in the queue with the expected wait,
or, outside the desk's service hours (DESK_SERVICE_HOURS), when agents are
back (desk/waiting.py decides which). The bot stays paused until the desk
hands the conversation back (desk/relay.py).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common.blocking import run_blocking
from actions.common.facts import current_facts
from actions.common.outcomes import UNFINISHED_SLOT, record_outcome
from actions.diagnosis.errors import DiagnosisError
from actions.diagnosis.facts import VERSION_FIELD
from actions.services.cases import CaseStore, case_store
from actions.services.sql import StoreUnavailable
from desk.waiting import CLOSED, QUEUED, QUEUED_WITH_WAIT, UNQUEUED, waiting_news
from settings import action_settings

logger = logging.getLogger(__name__)

# How many of the user's messages the summary quotes (most recent last).
USER_WORDS_KEPT = 20
# What the user hears when the case opens, by what desk/waiting.py decided.
OPENED_RESPONSES = {
    CLOSED: "utter_handoff_closed",
    QUEUED_WITH_WAIT: "utter_handoff_with_wait",
    QUEUED: "utter_handoff",
    UNQUEUED: "utter_handoff_unqueued",
}


def problem_of(tracker: Tracker) -> Optional[str]:
    """The user's problem: the diagnosis's, else the message that asked for a person.

    "借呗不见了，我要转人工" asks for a person first thing, before any diagnosis
    noted a problem: the message itself is the complaint. A button's payload
    (``/request_human``) is no complaint.
    """
    noted = tracker.get_slot("problem_text")
    if noted:
        return str(noted)
    # The user event's text: as the user wrote it (masked by the input gate);
    # latest_message holds the NLU's normalised copy.
    said = [e.get("text") for e in tracker.events if e.get("event") == "user"]
    text = said[-1] if said else None
    if isinstance(text, str) and text.strip() and not text.startswith("/"):
        return text.strip()
    return None


def known_facts(tracker: Tracker) -> Dict[str, Any]:
    """The account facts known at the handoff: the store's record and the answers."""
    try:
        record = current_facts(tracker).to_dict()
    except DiagnosisError as error:  # a record we cannot read: the agent asks
        logger.warning("handoff case without facts: %s", error)
        return {}
    record.pop(VERSION_FIELD, None)
    return record


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
        "problem": problem_of(tracker),
        "causes": tracker.get_slot("findings") or [],
        "current_cause": tracker.get_slot("current_finding"),
        "steps_tried": tracker.get_slot("steps_tried") or [],
        "facts": known_facts(tracker),
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
        store = case_store()
        try:
            case_id = await run_blocking(
                store.open_case,
                tracker.sender_id,
                summary,
                tracker.get_latest_input_channel(),
            )
        except (StoreUnavailable, asyncio.TimeoutError) as error:
            logger.error("handoff case could not be stored: %s", error or "timeout")
            dispatcher.utter_message(response="utter_handoff_failed")
            return []
        await record_outcome(tracker, "handed_off")
        try:
            position, typical_wait = await run_blocking(place_in_queue, store, case_id)
        except (StoreUnavailable, asyncio.TimeoutError) as error:
            logger.warning("place of case %s not read: %s", case_id, error or "timeout")
            position, typical_wait = None, None
        news = waiting_news(
            action_settings().desk_hours,
            datetime.now(timezone.utc),
            position,
            typical_wait,
        )
        dispatcher.utter_message(
            response=OPENED_RESPONSES[news.kind], case_id=case_id, **news.values
        )
        events: List[EventType] = [SlotSet("case_id", case_id)]
        if tracker.get_slot(UNFINISHED_SLOT):
            # A human has the diagnosis now: nothing left to offer to resume.
            events.append(SlotSet(UNFINISHED_SLOT, False))
        return [*events, ConversationPaused()]


def place_in_queue(
    store: CaseStore, case_id: str
) -> Tuple[Optional[int], Optional[float]]:
    """The case's place in the queue and the typical wait (blocking)."""
    return store.queue_position(case_id), store.typical_wait_s()
