"""The facts of this conversation: the store's record kept once, the answers apart.

The ``account_record`` slot holds the account store's record (the facts JSON
format) read when the diagnosis starts; it is read again only by the re-check
after the user says a fix is done, which keeps the fresher record. The facts
form's slots hold only what the user answered. The engine sees the two merged
(`actions.diagnosis.questions.merge_facts`).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from rasa_sdk import Tracker

from actions.diagnosis.facts import AccountFacts, parse_facts
from actions.diagnosis.questions import merge_facts

RECORD_SLOT = "account_record"


def record_slot(record: Optional[AccountFacts]) -> Dict[str, Any]:
    """The slot value that keeps `record` (None: no record for this diagnosis)."""
    return {RECORD_SLOT: record.to_dict() if record is not None else None}


def kept_record(tracker: Tracker) -> Optional[AccountFacts]:
    """The store's record kept for this diagnosis, if the user was identified."""
    raw = tracker.get_slot(RECORD_SLOT)
    return parse_facts(raw) if raw else None


def current_facts(tracker: Tracker) -> AccountFacts:
    """What we know now: the kept record, its gaps filled by the user's answers."""
    return merge_facts(kept_record(tracker), tracker.slots)
