"""How each diagnosis ended (resolved, handed off, abandoned), for the case store.

A diagnosis is recorded as abandoned when it starts, and the record is replaced
when it ends: resolved_by_bot at the wrap-up, handed_off at a handoff. A
conversation that just stops (the user leaves; the session expires mid-way)
is so counted without anything having to notice: Rasa sees an expired session
only when the user writes again, if ever. `UNFINISHED_SLOT` says the same to
the dialogue: true from the start until the wrap-up or a handoff, it lets a
user who comes back be offered to go on (actions/resume.py).
"""

from __future__ import annotations

import asyncio
import logging

from rasa_sdk import Tracker

from actions.common.blocking import run_blocking
from actions.services.cases import case_store
from actions.services.sql import StoreUnavailable

logger = logging.getLogger(__name__)

UNFINISHED_SLOT = "diagnosis_unfinished"


async def record_outcome(tracker: Tracker, outcome: str) -> None:
    """Count how the diagnosis ended; a failing store is logged, never shown."""
    causes = tracker.get_slot("findings") or []
    try:
        await run_blocking(
            case_store().record_outcome, tracker.sender_id, outcome, causes
        )
    except (StoreUnavailable, asyncio.TimeoutError) as error:
        logger.warning("could not record outcome %s: %s", outcome, error or "timeout")
