"""A Redis lock store whose ticket operations are atomic across Rasa processes.

Rasa 3.6's RedisLockStore changes a conversation's ticket lock by reading it
(GET), changing it in Python and writing it back (SET). Two Rasa instances that
take messages of the same conversation at the same moment both read the same
lock, both write, and one ticket is lost: both messages are then processed at
once, and the SQL tracker store, which appends "the events after the ones it
already has", drops one user message (measured: 1 of 8 messages lost in a
burst to two instances; tests/e2e/test_prod_profile.py).

This store keeps Rasa's ticket lock and its JSON format but does every
read-change-write inside a Redis transaction (WATCH/MULTI/EXEC, retried by
redis-py when another process changed the key in between).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional, Tuple, TypeVar

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore

from bot_server import rasa_patches

T = TypeVar("T")
# What a change returns: its result, and the lock to store (None deletes it).
Change = Callable[[Optional[TicketLock]], Tuple[T, Optional[TicketLock]]]


class AtomicRedisLockStore(RedisLockStore):
    """RedisLockStore with atomic ticket issue, update and clean-up."""

    def __init__(self, endpoint_config: Any) -> None:
        rasa_patches.install()  # Rasa builds the store at start-up
        # Rasa builds custom lock stores with the endpoint config only.
        super().__init__(host=endpoint_config.url, **endpoint_config.kwargs)

    def _key(self, conversation_id: str) -> str:
        return str(self.key_prefix) + conversation_id

    def _atomically(self, conversation_id: str, change: Change[T]) -> T:
        """Run ``change`` on the stored lock inside a Redis transaction."""
        key = self._key(conversation_id)
        outcome: list[T] = []

        def transaction(pipe: Any) -> None:
            raw = pipe.get(key)
            lock = TicketLock.from_dict(json.loads(raw)) if raw else None
            result, new_lock = change(lock)
            pipe.multi()
            if new_lock is None:
                pipe.delete(key)
            else:
                pipe.set(key, new_lock.dumps())
            outcome[:] = [result]

        self.red.transaction(transaction, key)
        return outcome[0]

    def issue_ticket(
        self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME
    ) -> int:
        """Issue a ticket, creating the lock if needed (atomic)."""

        def change(lock: Optional[TicketLock]) -> Tuple[int, Optional[TicketLock]]:
            lock = lock or TicketLock(conversation_id)
            return lock.issue_ticket(lock_lifetime), lock

        try:
            return self._atomically(conversation_id, change)
        except Exception as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

    def update_lock(self, conversation_id: str) -> None:
        """Drop expired tickets (atomic)."""

        def change(lock: Optional[TicketLock]) -> Tuple[None, Optional[TicketLock]]:
            if lock is not None:
                lock.remove_expired_tickets()
            return None, lock

        self._atomically(conversation_id, change)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Remove a served ticket (atomic)."""

        def change(lock: Optional[TicketLock]) -> Tuple[None, Optional[TicketLock]]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return None, lock

        self._atomically(conversation_id, change)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Remove the ticket; delete the lock when nobody waits (one transaction)."""

        def change(lock: Optional[TicketLock]) -> Tuple[None, Optional[TicketLock]]:
            if lock is None:
                return None, None
            lock.remove_ticket_for(ticket_number)
            return None, lock if lock.is_someone_waiting() else None

        self._atomically(conversation_id, change)
