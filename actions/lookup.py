"""Account lookups for the actions: bounded in time, never raising."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar

from rasa_sdk import Tracker

from actions.config import load_settings
from actions.diagnosis.errors import AccountNotFound
from actions.diagnosis.facts import AccountFacts
from actions.identity import verified_account
from actions.services.accounts import AccountStore, account_store
from actions.services.sql import StoreUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

FOUND = "found"
NOT_FOUND = "not_found"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Lookup:
    """What a lookup gave: found facts, an unknown id, or a store that failed."""

    status: str
    facts: Optional[AccountFacts] = None


async def lookup(
    account_id: Optional[str], store: Optional[AccountStore] = None
) -> Lookup:
    """Look an account up in a worker thread, giving up after the timeout."""
    if not account_id:
        return Lookup(NOT_FOUND)
    store = store or account_store()
    try:
        facts = await run_blocking(store.get, account_id)
    except AccountNotFound:
        return Lookup(NOT_FOUND)
    except (StoreUnavailable, asyncio.TimeoutError) as error:
        logger.warning(
            "account store unavailable for %s: %s", account_id, error or "timeout"
        )
        return Lookup(UNAVAILABLE)
    return Lookup(FOUND, facts)


def identified_account(tracker: Tracker) -> Optional[str]:
    """Whose account this message may read.

    ``ACCOUNT_IDENTITY=sender`` (the demo profile's default): the conversation
    id is the account id. ``verified`` (the production profile's default): only
    a valid signed token in the current message's metadata counts
    (actions/identity.py); without one the user is anonymous.
    """
    if load_settings().identity == "sender":
        return str(tracker.sender_id)
    return verified_account((tracker.latest_message or {}).get("metadata"))


async def run_blocking(function: Callable[..., T], *args: Any) -> T:
    """Run a blocking service call in a worker thread, bounded by the timeout.

    Raises asyncio.TimeoutError when the service does not answer in time.
    """
    timeout = load_settings().lookup_timeout_s + 0.5
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.run_in_executor(None, function, *args), timeout)
