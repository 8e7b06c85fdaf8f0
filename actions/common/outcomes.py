"""How each diagnosis ended (resolved, handed off, abandoned), for the case store."""

from __future__ import annotations

import asyncio
import logging

from rasa_sdk import Tracker

from actions.common.blocking import run_blocking
from actions.services.cases import case_store
from actions.services.sql import StoreUnavailable

logger = logging.getLogger(__name__)


async def record_outcome(tracker: Tracker, outcome: str) -> None:
    """Count how the diagnosis ended; a failing store is logged, never shown."""
    causes = tracker.get_slot("findings") or []
    try:
        await run_blocking(
            case_store().record_outcome, tracker.sender_id, outcome, causes
        )
    except (StoreUnavailable, asyncio.TimeoutError) as error:
        logger.warning("could not record outcome %s: %s", outcome, error or "timeout")
