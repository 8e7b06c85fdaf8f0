"""Retention: conversations idle longer than RETENTION_DAYS are deleted.

A conversation is purged when nothing of it is newer than the cutoff (now
minus the retention): its last event in the tracker store, its diagnosis
outcome's last change, its handoff cases' opening and their status's last
change. Then everything of it goes: its events, its outcome, its cases, their
status rows and the desk's audit rows of those cases. Labels reviewers gave
(``review_labels``) stay: they hold masked text only and are training data;
the queue's unlabelled items came from the events and go with them. The daily
rollups of the days it deleted events of are rolled up again from what is
left (insights/rollup.py), so no conversation outlives the retention there.

Safe to run again at any time (a second run finds nothing); it works in
chunks of conversations, each deleted in one transaction per database, and
a conversation that writes again while the purge runs keeps its events.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Sequence, Set

import sqlalchemy as sa

from actions.services.cases import cases_table, outcomes_table, status_table
from insights.rollup import day_number, drop_rollups, ensure_rollups
from insights.stores import Stores, conversations_table, db_time, events_table

logger = logging.getLogger(__name__)

# Conversations per transaction.
CHUNK = 500
# The agent desk's audit log (desk/store.py), in the case store's database:
# present once the desk has run.
AUDIT_TABLE = "desk_audit"
COUNTED = ("conversations", "events", "outcomes", "cases", "case_status", "audit")


def purge(stores: Stores, days: int, now: Optional[datetime] = None) -> Dict[str, Any]:
    """Delete the conversations idle for more than ``days`` days; the counts."""
    if days < 1:
        raise ValueError("the retention must be at least 1 day")
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=days)
    counts = dict.fromkeys(COUNTED, 0)
    has_events = stores.ready_tracker()
    stores.ready_cases()
    candidates = _case_candidates(stores, cutoff)
    if has_events:
        candidates |= _idle_senders(stores, cutoff)
    ordered = sorted(candidates)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        gone = set(chunk) - _recent_in_cases(stores, chunk, cutoff)
        if has_events:
            gone -= _recent_in_tracker(stores, chunk, cutoff)
        if not gone:
            continue
        done = sorted(gone)
        if has_events:
            counts["events"] += _delete_events(stores, done, cutoff)
        for name, number in _delete_case_rows(stores, done).items():
            counts[name] += number
        counts["conversations"] += len(done)
    if counts["conversations"]:
        # The rollups of the days whose events went are rolled up again from
        # what is left (every deleted event is older than the cutoff).
        stores.write(
            stores.cases,
            lambda c: drop_rollups(c, day_number(cutoff.timestamp())),
        )
    ensure_rollups(stores, now)
    logger.info("insights purge (older than %s): %s", cutoff.isoformat(), counts)
    return {"cutoff": cutoff.isoformat(), "retention_days": days, **counts}


def _idle_senders(stores: Stores, cutoff: datetime) -> Set[str]:
    """Senders whose last event is older than the cutoff."""
    events = events_table.c
    query = (
        sa.select(events.sender_id)
        .group_by(events.sender_id)
        .having(sa.func.max(events.timestamp) < cutoff.timestamp())
    )
    rows = stores.read(stores.tracker, lambda c: c.execute(query).all())
    return {row[0] for row in rows}


def _case_candidates(stores: Stores, cutoff: datetime) -> Set[str]:
    """Conversations with an outcome or a case older than the cutoff."""
    old = db_time(stores.cases, cutoff)
    query = sa.union(
        sa.select(outcomes_table.c.conversation_id).where(
            outcomes_table.c.updated_at < old
        ),
        sa.select(cases_table.c.conversation_id).where(cases_table.c.created_at < old),
        sa.select(status_table.c.conversation_id).where(
            status_table.c.updated_at < old
        ),
    )
    rows = stores.read(stores.cases, lambda c: c.execute(query).all())
    return {row[0] for row in rows}


def _recent_in_cases(
    stores: Stores, chunk: Sequence[str], cutoff: datetime
) -> Set[str]:
    """Of ``chunk``, the conversations with a case-store row newer than the cutoff."""
    new = db_time(stores.cases, cutoff)
    query = sa.union(
        sa.select(outcomes_table.c.conversation_id).where(
            outcomes_table.c.conversation_id.in_(chunk),
            outcomes_table.c.updated_at >= new,
        ),
        sa.select(cases_table.c.conversation_id).where(
            cases_table.c.conversation_id.in_(chunk), cases_table.c.created_at >= new
        ),
        sa.select(status_table.c.conversation_id).where(
            status_table.c.conversation_id.in_(chunk), status_table.c.updated_at >= new
        ),
    )
    rows = stores.read(stores.cases, lambda c: c.execute(query).all())
    return {row[0] for row in rows}


def _recent_in_tracker(
    stores: Stores, chunk: Sequence[str], cutoff: datetime
) -> Set[str]:
    """Of ``chunk``, the senders with an event newer than the cutoff."""
    events = events_table.c
    query = (
        sa.select(events.sender_id)
        .where(events.sender_id.in_(chunk), events.timestamp >= cutoff.timestamp())
        .distinct()
    )
    rows = stores.read(stores.tracker, lambda c: c.execute(query).all())
    return {row[0] for row in rows}


def _delete_events(stores: Stores, senders: List[str], cutoff: datetime) -> int:
    """Delete the senders' events, unless one wrote again meanwhile."""
    events = events_table.c
    # A second reference to the table for the "wrote again" check.
    newer = events_table.alias("newer")
    wrote_again = sa.select(newer.c.sender_id).where(
        newer.c.sender_id.in_(senders), newer.c.timestamp >= cutoff.timestamp()
    )
    statement = events_table.delete().where(
        events.sender_id.in_(senders), events.sender_id.not_in(wrote_again)
    )
    return int(stores.write(stores.tracker, lambda c: c.execute(statement).rowcount))


def _delete_case_rows(stores: Stores, conversations: List[str]) -> Dict[str, int]:
    """Delete the conversations' outcomes, cases, status and audit rows."""
    has_audit = stores.read(
        stores.cases, lambda c: sa.inspect(c).has_table(AUDIT_TABLE)
    )

    def delete(connection: sa.engine.Connection) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        case_ids = sa.union(
            sa.select(cases_table.c.case_id).where(
                cases_table.c.conversation_id.in_(conversations)
            ),
            sa.select(status_table.c.case_id).where(
                status_table.c.conversation_id.in_(conversations)
            ),
        )
        ids = [row[0] for row in connection.execute(case_ids)]
        counts["audit"] = 0
        if has_audit and ids:
            audit = sa.table(AUDIT_TABLE, sa.column("case_id"))
            counts["audit"] = connection.execute(
                audit.delete().where(audit.c.case_id.in_(ids))
            ).rowcount
        counts["case_status"] = connection.execute(
            status_table.delete().where(
                status_table.c.conversation_id.in_(conversations)
            )
        ).rowcount
        counts["cases"] = connection.execute(
            cases_table.delete().where(cases_table.c.conversation_id.in_(conversations))
        ).rowcount
        counts["outcomes"] = connection.execute(
            outcomes_table.delete().where(
                outcomes_table.c.conversation_id.in_(conversations)
            )
        ).rowcount
        known = conversations_table.c.conversation_id
        connection.execute(conversations_table.delete().where(known.in_(conversations)))
        return counts

    result: Dict[str, int] = stores.write(stores.cases, delete)
    return result
