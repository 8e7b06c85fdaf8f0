"""Whose account a message may read, and its lookup: bounded in time, never raising."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Optional

from rasa_sdk import Tracker

from actions.common.blocking import run_blocking
from actions.diagnosis.enums import LookupStatus
from actions.diagnosis.errors import AccountNotFound
from actions.diagnosis.facts import AccountFacts
from actions.identity import verified_account
from actions.services.accounts import AccountStore, account_store
from actions.services.sql import StoreUnavailable
from settings import action_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lookup:
    """What a lookup gave: found facts, an unknown id, or a store that failed."""

    status: LookupStatus
    facts: Optional[AccountFacts] = None


async def lookup(
    account_id: Optional[str], store: Optional[AccountStore] = None
) -> Lookup:
    """Look an account up in a worker thread, giving up after the timeout."""
    if not account_id:
        return Lookup(LookupStatus.NOT_FOUND)
    store = store or account_store()
    try:
        facts = await run_blocking(store.get, account_id)
    except AccountNotFound:
        return Lookup(LookupStatus.NOT_FOUND)
    except (StoreUnavailable, asyncio.TimeoutError) as error:
        logger.warning(
            "account store unavailable for %s: %s", account_id, error or "timeout"
        )
        return Lookup(LookupStatus.UNAVAILABLE)
    return Lookup(LookupStatus.FOUND, facts)


def identified_account(tracker: Tracker) -> Optional[str]:
    """Whose account this message may read.

    ``ACCOUNT_IDENTITY=sender`` (the demo profile's default): the conversation
    id is the account id. ``verified`` (the production profile's default): only
    a valid signed token in the current message's metadata counts
    (actions/identity.py); without one the user is anonymous.
    """
    if action_settings().identity == "sender":
        return str(tracker.sender_id)
    metadata = (tracker.latest_message or {}).get("metadata")
    return verified_account(metadata, action_settings().identity_secret)
