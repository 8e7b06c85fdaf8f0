"""Handoff cases and diagnosis outcomes in SQL (by default the accounts' database).

A handoff case is the summary a human agent reads (account, findings, steps
tried, the user's words). An outcome row per conversation says how the
diagnosis ended: resolved_by_bot, handed_off or abandoned, plus the 1-5 rating.

    python -m actions.services.cases summary       # outcome counts, mean rating
    python -m actions.services.cases show CASE_ID  # one handoff case as JSON
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from actions.config import Settings, load_settings
from actions.services.sql import StoreUnavailable, engine_for

OUTCOMES = ("resolved_by_bot", "handed_off", "abandoned")

_metadata = sa.MetaData()
cases_table = sa.Table(
    "handoff_cases",
    _metadata,
    sa.Column("case_id", sa.String(32), primary_key=True),
    sa.Column("conversation_id", sa.String(255), nullable=False, index=True),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
outcomes_table = sa.Table(
    "diagnosis_outcomes",
    _metadata,
    sa.Column("conversation_id", sa.String(255), primary_key=True),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("rating", sa.Integer, nullable=True),
    sa.Column("causes", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


class CaseStore:
    """Writes and reads handoff cases and outcomes."""

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._schema_ready = False

    @property
    def _engine(self) -> sa.engine.Engine:
        engine = engine_for(self.url, self.timeout_s)
        if not self._schema_ready:
            try:
                _metadata.create_all(engine)
            except SQLAlchemyError as error:
                raise StoreUnavailable(str(error).splitlines()[0]) from None
            self._schema_ready = True
        return engine

    def open_case(self, conversation_id: str, summary: Mapping[str, Any]) -> str:
        """Store a handoff summary; returns the new case id."""
        case_id = uuid.uuid4().hex[:12].upper()
        row = {
            "case_id": case_id,
            "conversation_id": conversation_id,
            "summary": json.dumps({**summary, "case_id": case_id}, ensure_ascii=False),
            "created_at": datetime.now(timezone.utc),
        }
        self._write(lambda c: c.execute(cases_table.insert(), row))
        return case_id

    def case(self, case_id: str) -> Optional[Dict[str, Any]]:
        """One case summary, or None."""
        query = sa.select(cases_table.c.summary).where(cases_table.c.case_id == case_id)
        row = self._read(lambda c: c.execute(query).first())
        return json.loads(row[0]) if row else None

    def cases_for(self, conversation_id: str) -> List[Dict[str, Any]]:
        """All case summaries of one conversation, oldest first."""
        query = (
            sa.select(cases_table.c.summary)
            .where(cases_table.c.conversation_id == conversation_id)
            .order_by(cases_table.c.created_at)
        )
        rows = self._read(lambda c: c.execute(query).all())
        return [json.loads(row[0]) for row in rows]

    def record_outcome(
        self, conversation_id: str, outcome: str, causes: Sequence[str]
    ) -> None:
        """Set how this conversation's diagnosis ended (the latest word counts)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        row = {
            "conversation_id": conversation_id,
            "outcome": outcome,
            "rating": None,
            "causes": json.dumps(list(causes)),
            "updated_at": datetime.now(timezone.utc),
        }

        def upsert(connection: sa.engine.Connection) -> None:
            where = outcomes_table.c.conversation_id == conversation_id
            connection.execute(outcomes_table.delete().where(where))
            connection.execute(outcomes_table.insert(), row)

        self._write(upsert)

    def record_rating(self, conversation_id: str, rating: int) -> None:
        """Attach a 1-5 rating to the conversation's outcome."""
        if not 1 <= rating <= 5:
            raise ValueError(f"rating must be 1-5, got {rating}")
        update = (
            outcomes_table.update()
            .where(outcomes_table.c.conversation_id == conversation_id)
            .values(rating=rating, updated_at=datetime.now(timezone.utc))
        )
        self._write(lambda c: c.execute(update))

    def outcome(self, conversation_id: str) -> Optional[Dict[str, Any]]:
        """The outcome row of one conversation."""
        query = sa.select(outcomes_table).where(
            outcomes_table.c.conversation_id == conversation_id
        )
        row = self._read(lambda c: c.execute(query).mappings().first())
        if row is None:
            return None
        return {**dict(row), "causes": json.loads(row["causes"])}

    def summary(self) -> Dict[str, Any]:
        """Counts per outcome and the mean rating."""
        query = sa.select(
            outcomes_table.c.outcome,
            sa.func.count(),
            sa.func.avg(outcomes_table.c.rating),
        ).group_by(outcomes_table.c.outcome)
        rows = self._read(lambda c: c.execute(query).all())
        counts = {outcome: 0 for outcome in OUTCOMES}
        ratings: Dict[str, Optional[float]] = {}
        for outcome, count, mean in rows:
            counts[outcome] = count
            ratings[outcome] = float(mean) if mean is not None else None
        return {"counts": counts, "mean_rating": ratings}

    def _write(self, work: Any) -> None:
        try:
            with self._engine.begin() as connection:
                work(connection)
        except SQLAlchemyError as error:
            raise StoreUnavailable(str(error).splitlines()[0]) from None

    def _read(self, work: Any) -> Any:
        try:
            with self._engine.connect() as connection:
                return work(connection)
        except SQLAlchemyError as error:
            raise StoreUnavailable(str(error).splitlines()[0]) from None


def case_store(settings: Optional[Settings] = None) -> CaseStore:
    """The one place that picks the case store from the configuration."""
    settings = settings or load_settings()
    return CaseStore(settings.case_db_url, settings.lookup_timeout_s)


def main(argv: Sequence[str]) -> int:
    """`summary` or `show CASE_ID`."""
    try:
        if argv[:1] == ["summary"]:
            print(json.dumps(case_store().summary(), ensure_ascii=False, indent=2))
            return 0
        if argv[:1] == ["show"] and len(argv) == 2:
            found = case_store().case(argv[1])
            if found is None:
                print(f"no case {argv[1]}", file=sys.stderr)
                return 1
            print(json.dumps(found, ensure_ascii=False, indent=2))
            return 0
    except StoreUnavailable as error:
        print(f"case store unavailable: {error}", file=sys.stderr)
        return 3
    print(
        "usage: python -m actions.services.cases summary | show CASE_ID",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
