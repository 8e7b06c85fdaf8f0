"""Handoff cases and diagnosis outcomes in SQL (by default the accounts' database).

A handoff case is the summary a human agent reads (account, findings, steps
tried, the user's words). An outcome row per conversation says how the
diagnosis ended: resolved_by_bot, handed_off or abandoned, plus the 1-5 rating.

    python -m actions.services.cases summary              # counts, mean rating
    python -m actions.services.cases list [--scam]        # recent cases, one a line
    python -m actions.services.cases show CASE_ID         # one case, readable
    python -m actions.services.cases show --json CASE_ID  # one case as JSON

A case whose conversation reported or described a scam (``scam_reported``) is
marked first thing, in the readable case and in the list, and counted in the
summary: the agent calls that user back first.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from actions.services.sql import StoreUnavailable, engine_for
from settings import ActionSettings, action_settings

OUTCOMES = ("resolved_by_bot", "handed_off", "abandoned")
# Where a handoff case stands on the agent desk (desk/): waiting in the queue,
# active (claimed by one agent), resolved (handed back to the bot).
CASE_STATUSES = ("waiting", "active", "resolved")
# How many recently claimed cases the expected wait is estimated from.
WAIT_SAMPLE = 20
# The first line of a readable case whose user reported or described a scam.
SCAM_MARKER = "⚠ 疑似诈骗：用户报告/描述了诈骗，请优先处理"
# How the summary JSON says it (json.dumps of our own dict: a user's text
# inside it has its quotes escaped, so it cannot contain this).
_SCAM_FLAG_JSON = '"scam_reported": true'
# How many recent cases `list` shows.
LIST_LIMIT = 50

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


# One row per case: its place on the agent desk. Written with the case (one
# transaction); claims are one conditional UPDATE, so of two agents (on any
# number of page servers or Rasa instances) exactly one wins.
status_table = sa.Table(
    "case_status",
    _metadata,
    sa.Column("case_id", sa.String(32), primary_key=True),
    sa.Column("conversation_id", sa.String(255), nullable=False, index=True),
    sa.Column("channel", sa.String(64), nullable=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("scam", sa.Boolean, nullable=False, default=False),
    sa.Column("agent_id", sa.String(64), nullable=True, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("first_reply_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolution", sa.Text, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


def _scam_flag_in_summary() -> Any:
    """SQL filter for the scam-flagged cases (callers re-check the parsed JSON)."""
    return cases_table.c.summary.contains(_SCAM_FLAG_JSON, autoescape=True)


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

    def open_case(
        self,
        conversation_id: str,
        summary: Mapping[str, Any],
        channel: Optional[str] = None,
    ) -> str:
        """Store a handoff summary, waiting in the desk's queue; returns its id.

        A conversation has at most one open (waiting or active) case: asking
        again while one is open returns that case's id and adds nothing.
        """
        now = datetime.now(timezone.utc)
        case_id = uuid.uuid4().hex[:12].upper()
        row = {
            "case_id": case_id,
            "conversation_id": conversation_id,
            "summary": json.dumps({**summary, "case_id": case_id}, ensure_ascii=False),
            "created_at": now,
        }
        status = {
            "case_id": case_id,
            "conversation_id": conversation_id,
            "channel": channel,
            "status": "waiting",
            "scam": is_scam_case(summary),
            "created_at": now,
            "updated_at": now,
        }
        opened: List[str] = []

        def insert(connection: sa.engine.Connection) -> None:
            existing = connection.execute(
                sa.select(status_table.c.case_id)
                .where(status_table.c.conversation_id == conversation_id)
                .where(status_table.c.status != "resolved")
            ).first()
            if existing is not None:
                opened.append(existing[0])
                return
            connection.execute(cases_table.insert(), row)
            connection.execute(status_table.insert(), status)
            opened.append(case_id)

        self._write(insert)
        return opened[0]

    def open_case_of(self, conversation_id: str) -> Optional[Dict[str, Any]]:
        """The conversation's waiting or active case (its status row), or None."""
        query = (
            sa.select(status_table)
            .where(status_table.c.conversation_id == conversation_id)
            .where(status_table.c.status != "resolved")
            .order_by(status_table.c.created_at.desc())
        )
        row = self._read(lambda c: c.execute(query).mappings().first())
        return dict(row) if row is not None else None

    def queue_position(self, case_id: str) -> Optional[int]:
        """1 for the next case an agent takes; None unless the case is waiting.

        Suspected scams go first, then the oldest: the order of the desk's queue.
        """
        me = self._read(
            lambda c: (
                c.execute(
                    sa.select(status_table).where(status_table.c.case_id == case_id)
                )
                .mappings()
                .first()
            )
        )
        if me is None or me["status"] != "waiting":
            return None
        waiting = status_table.c.status == "waiting"
        if me["scam"]:
            ahead = sa.and_(
                waiting,
                status_table.c.scam.is_(True),
                status_table.c.created_at < me["created_at"],
            )
        else:
            ahead = sa.and_(
                waiting,
                sa.or_(
                    status_table.c.scam.is_(True),
                    status_table.c.created_at < me["created_at"],
                ),
            )
        count = sa.select(sa.func.count()).select_from(status_table).where(ahead)
        return int(self._read(lambda c: c.execute(count).scalar_one())) + 1

    def typical_wait_s(self) -> Optional[float]:
        """Median seconds from opening to claim of the last claimed cases, or None."""
        query = (
            sa.select(status_table.c.created_at, status_table.c.claimed_at)
            .where(status_table.c.claimed_at.is_not(None))
            .order_by(status_table.c.claimed_at.desc())
            .limit(WAIT_SAMPLE)
        )
        rows = self._read(lambda c: c.execute(query).all())
        waits = sorted(
            (_aware(claimed) - _aware(created)).total_seconds()
            for created, claimed in rows
        )
        if not waits:
            return None
        return waits[len(waits) // 2]

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

    def recent_cases(
        self, limit: int = LIST_LIMIT, scam_only: bool = False
    ) -> List[Dict[str, Any]]:
        """The latest case summaries, newest first; only scam-flagged ones if asked."""
        query = sa.select(cases_table.c.summary).order_by(
            cases_table.c.created_at.desc()
        )
        if scam_only:
            query = query.where(_scam_flag_in_summary())
        rows = self._read(lambda c: c.execute(query.limit(limit)).all())
        found = [json.loads(row[0]) for row in rows]
        return [c for c in found if is_scam_case(c)] if scam_only else found

    def scam_case_count(self) -> int:
        """How many handoff cases are flagged as a reported scam."""
        query = sa.select(cases_table.c.summary).where(_scam_flag_in_summary())
        rows = self._read(lambda c: c.execute(query).all())
        return sum(1 for row in rows if is_scam_case(json.loads(row[0])))

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
        """Counts per outcome, the mean rating and the scam-flagged cases."""
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
        return {
            "counts": counts,
            "mean_rating": ratings,
            "scam_flagged_cases": self.scam_case_count(),
        }

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


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back: they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def is_scam_case(case: Mapping[str, Any]) -> bool:
    """Whether the user of this case reported or described a scam."""
    return case.get("scam_reported") is True


def render_case(case: Mapping[str, Any]) -> str:
    """A case as a human agent reads it; a reported scam is the first line."""
    lines = [SCAM_MARKER] if is_scam_case(case) else []
    account = case.get("account_id") or "匿名（未关联账户）"
    lines += [
        f"工单 {case.get('case_id', '?')}  创建于 {case.get('created_at', '?')}",
        f"会话 {case.get('conversation_id', '?')}  账户 {account}"
        f"  事实来源 {case.get('facts_source') or '无'}",
        f"问题：{case.get('problem') or '（未说明）'}",
        f"诊断原因：{'、'.join(case.get('causes') or []) or '无'}"
        f"  当前处理：{case.get('current_cause') or '无'}",
    ]
    steps = case.get("steps_tried") or []
    lines.append("已尝试的步骤：" + ("" if steps else "无"))
    for step in steps:
        recheck = f"（复查：{step['recheck']}）" if step.get("recheck") else ""
        lines.append(f"  - {step.get('code')}: {step.get('answer')}{recheck}")
    words = case.get("user_words") or []
    lines.append(f"用户原话（最近 {len(words)} 条）：")
    # A user's line breaks stay inside the quote: no user text starts a line.
    lines += ["  > " + str(text).replace("\n", "\n    ") for text in words]
    return "\n".join(lines)


def case_line(case: Mapping[str, Any]) -> str:
    """One line per case for `list`: the scam mark, id, time, account, causes."""
    mark = "⚠ 诈骗" if is_scam_case(case) else "      "
    causes = ",".join(case.get("causes") or []) or "-"
    return (
        f"{mark} {case.get('case_id', '?')}  {case.get('created_at', '?')}"
        f"  {case.get('account_id') or '匿名'}  {causes}"
    )


def case_store(settings: Optional[ActionSettings] = None) -> CaseStore:
    """The one place that picks the case store from the configuration."""
    settings = settings or action_settings()
    return CaseStore(settings.case_store_url, settings.lookup_timeout_s)


USAGE = (
    "usage: python -m actions.services.cases summary | list [--scam]"
    " | show [--json] CASE_ID"
)


def main(argv: Sequence[str]) -> int:
    """`summary`, `list [--scam]` or `show [--json] CASE_ID`."""
    try:
        if list(argv) == ["summary"]:
            print(json.dumps(case_store().summary(), ensure_ascii=False, indent=2))
            return 0
        if argv[:1] == ["list"] and set(argv[1:]) <= {"--scam"}:
            recent = case_store().recent_cases(scam_only="--scam" in argv[1:])
            for each in recent:
                print(case_line(each))
            return 0
        if argv[:1] == ["show"] and len(argv) in (2, 3):
            as_json = argv[1] == "--json"
            if as_json != (len(argv) == 3):
                print(USAGE, file=sys.stderr)
                return 2
            found = case_store().case(argv[-1])
            if found is None:
                print(f"no case {argv[-1]}", file=sys.stderr)
                return 1
            if as_json:
                print(json.dumps(found, ensure_ascii=False, indent=2))
            else:
                print(render_case(found))
            return 0
    except StoreUnavailable as error:
        print(f"case store unavailable: {error}", file=sys.stderr)
        return 3
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
