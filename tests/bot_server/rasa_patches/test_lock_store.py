"""The atomic Redis lock store (rasa_patches/lock_store.py) against a real Redis."""

from __future__ import annotations

import concurrent.futures
import uuid
from typing import Iterator, List

import pytest
from rasa.utils.endpoints import EndpointConfig

from bot_server.rasa_patches.lock_store import AtomicRedisLockStore
from devtools.servers import Redis


@pytest.fixture
def stores(redis: Redis) -> Iterator[List[AtomicRedisLockStore]]:
    """Two lock stores, as two Rasa processes would have, on a fresh key prefix."""
    prefix = f"jiebeitest{uuid.uuid4().hex[:8]}"
    config = EndpointConfig(
        url=redis.host, port=redis.port, db=0, key_prefix=prefix, type="x"
    )
    made = [AtomicRedisLockStore(config), AtomicRedisLockStore(config)]
    yield made
    for key in made[0].red.scan_iter(f"{prefix}:*"):
        made[0].red.delete(key)


def test_tickets_issued_at_once_by_two_processes_are_all_distinct(
    stores: List[AtomicRedisLockStore],
) -> None:
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        tickets = list(
            pool.map(lambda i: stores[i % 2].issue_ticket("c1", 60), range(64))
        )
    assert sorted(tickets) == list(range(64))
    lock = stores[0].get_lock("c1")
    assert lock is not None and len(lock.tickets) == 64


def test_cleanup_keeps_the_lock_while_someone_waits_and_deletes_it_after(
    stores: List[AtomicRedisLockStore],
) -> None:
    first = stores[0].issue_ticket("c2", 60)
    second = stores[1].issue_ticket("c2", 60)
    lock = stores[0].get_lock("c2")
    assert lock is not None and not lock.is_locked(first) and lock.is_locked(second)

    stores[0].cleanup("c2", first)
    lock = stores[1].get_lock("c2")
    assert lock is not None and not lock.is_locked(second)

    stores[1].cleanup("c2", second)
    assert stores[0].get_lock("c2") is None


async def test_the_lock_context_serialises_two_processes(
    stores: List[AtomicRedisLockStore],
) -> None:
    import asyncio

    order: List[str] = []

    async def hold(store: AtomicRedisLockStore, name: str) -> None:
        async with store.lock("c3", wait_time_in_seconds=0.05):
            order.append(f"{name} in")
            await asyncio.sleep(0.2)
            order.append(f"{name} out")

    await asyncio.gather(hold(stores[0], "a"), hold(stores[1], "b"))
    assert order in (
        ["a in", "a out", "b in", "b out"],
        ["b in", "b out", "a in", "a out"],
    )
    assert stores[0].get_lock("c3") is None


def test_expired_tickets_are_dropped_by_update(
    stores: List[AtomicRedisLockStore],
) -> None:
    stores[0].issue_ticket("c4", -1)  # already expired
    stores[0].update_lock("c4")
    lock = stores[1].get_lock("c4")
    assert lock is not None and len(lock.tickets) == 0
