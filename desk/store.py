"""The agent desk's state in SQL: agents, sessions, the audit log, the cases' desk side.

Lives in the case store's database (SQLite embedded, PostgreSQL in prod), beside
the tables of actions/services/cases.py, whose ``case_status`` rows it moves:

    waiting --claim--> active --resolve--> resolved
       ^                 |
       +----unclaim------+      (transfer: active, another holder)

Each move is ONE conditional UPDATE (``WHERE status = 'waiting'`` for a claim,
``WHERE status = 'active' AND agent_id = <me>`` for the others) and its row
count decides: of two agents claiming at once, on any number of page servers,
exactly one wins, because the database serialises the two updates of the row.

Passwords are argon2id hashes (argon2-cffi). A session is a random token the
browser keeps in a cookie; only its SHA-256 is stored, with the session's CSRF
token and the time it was last used, so sessions survive restarts and work on
every page server; one unused for the idle time is gone.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import SQLAlchemyError

from actions.services.cases import cases_table, outcomes_table, status_table
from actions.services.sql import StoreUnavailable, engine_for

ROLES = ("agent", "supervisor")
CASE_STATUSES = ("waiting", "active", "resolved")
# The demo profile's agents (docs/agent-desk.md); the production profile
# refuses to start while any agent's password is this one.
DEMO_PASSWORD = "demo-password"
DEMO_AGENTS = (("agent1", "小安", "supervisor"), ("agent2", "小宁", "agent"))
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256
USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
MAX_DISPLAY_NAME_CHARS = 32
# A session's last use is written at most this often (not on every request).
TOUCH_EVERY = timedelta(seconds=30)
# The longest token a cookie may carry (token_urlsafe(32) is 43 characters).
MAX_TOKEN_CHARS = 128
LIST_LIMIT = 200
AUDIT_ACTIONS = (
    "login",
    "login_failed",
    "logout",
    "claim",
    "unclaim",
    "transfer",
    "message",
    "resolve",
)

_metadata = sa.MetaData()
agents_table = sa.Table(
    "desk_agents",
    _metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("display_name", sa.String(64), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
sessions_table = sa.Table(
    "desk_sessions",
    _metadata,
    # SHA-256 (hex) of the cookie's token: a copy of the table opens no session.
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False, index=True),
)
audit_table = sa.Table(
    "desk_audit",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("agent_id", sa.String(64), nullable=False, index=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("case_id", sa.String(32), nullable=True, index=True),
    sa.Column("detail", sa.Text, nullable=True),
)


class DeskError(Exception):
    """A desk operation the caller may not do; web/agent_api.py maps each kind."""


class CaseNotFound(DeskError):
    """No case with this id."""


class NotHolder(DeskError):
    """The case is active with another agent."""

    def __init__(self, holder: Optional[str]) -> None:
        super().__init__(f"the case is held by {holder}")
        self.holder = holder


class CaseConflict(DeskError):
    """The case is not in the state the move needs (claimed, not active)."""

    def __init__(self, message: str, holder: Optional[str] = None) -> None:
        super().__init__(message)
        self.holder = holder


class UnknownAgent(DeskError):
    """No agent with this username."""


class BadAgent(ValueError):
    """An agent's username, name, role or password cannot be used; says why."""


@dataclass(frozen=True)
class Agent:
    """A person on the desk."""

    username: str
    display_name: str
    role: str

    def as_json(self) -> Dict[str, str]:
        """The agent as the API shows it."""
        return {
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
        }


@dataclass(frozen=True)
class Session:
    """A signed-in agent's session."""

    agent: Agent
    csrf_token: str
    token_hash: str


Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(moment: Optional[datetime]) -> Optional[datetime]:
    """SQLite gives naive datetimes back: they were stored in UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def iso(moment: Optional[datetime]) -> Optional[str]:
    """A stored time as ISO 8601 in UTC."""
    aware = _aware(moment)
    return aware.astimezone(timezone.utc).isoformat() if aware else None


def token_hash(token: str) -> str:
    """What is stored of a session token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_username(username: str) -> str:
    """A username as stored (lower case), or BadAgent."""
    if not isinstance(username, str) or not USERNAME.match(username):
        raise BadAgent(
            "username: 1-32 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return username


def check_password(password: str, profile: str) -> str:
    """A password an agent may have, or BadAgent saying why not."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise BadAgent(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise BadAgent(f"the password may have at most {MAX_PASSWORD_CHARS} characters")
    if profile == "prod" and password == DEMO_PASSWORD:
        raise BadAgent("the demo password is refused in the production profile")
    return password


class DeskStore:
    """Agents, sessions, audit and the desk side of the cases, over one database."""

    def __init__(
        self,
        url: str,
        timeout_s: float = 2.0,
        idle_minutes: int = 30,
        hasher: Optional[PasswordHasher] = None,
        clock: Clock = _utc_now,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.idle = timedelta(minutes=idle_minutes)
        self.hasher = hasher or PasswordHasher()
        self.clock = clock
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._dummy_hash: Optional[str] = None

    # ------------------------------------------------------------------ plumbing

    @property
    def _engine(self) -> sa.engine.Engine:
        engine = engine_for(self.url, self.timeout_s)
        if not self._schema_ready:
            with self._schema_lock:
                if not self._schema_ready:
                    try:
                        cases_table.metadata.create_all(engine)
                        _metadata.create_all(engine)
                    except SQLAlchemyError as error:
                        raise StoreUnavailable(str(error).splitlines()[0]) from None
                    self._schema_ready = True
        return engine

    def ensure_schema(self) -> None:
        """Create the tables now (at start-up) rather than on first use."""
        _ = self._engine

    def _write(self, work: Callable[[sa.engine.Connection], Any]) -> Any:
        try:
            with self._engine.begin() as connection:
                return work(connection)
        except SQLAlchemyError as error:
            raise StoreUnavailable(str(error).splitlines()[0]) from None

    def _read(self, work: Callable[[sa.engine.Connection], Any]) -> Any:
        try:
            with self._engine.connect() as connection:
                return work(connection)
        except SQLAlchemyError as error:
            raise StoreUnavailable(str(error).splitlines()[0]) from None

    # -------------------------------------------------------------------- agents

    def add_agent(
        self,
        username: str,
        display_name: str,
        role: str,
        password: str,
        profile: str = "demo",
    ) -> Agent:
        """Create the agent, or give an existing one this name, role and password."""
        check_username(username)
        display_name = display_name.strip()
        if not 1 <= len(display_name) <= MAX_DISPLAY_NAME_CHARS or any(
            not char.isprintable() for char in display_name
        ):
            raise BadAgent(
                f"display name: 1-{MAX_DISPLAY_NAME_CHARS} printable characters"
            )
        if role not in ROLES:
            raise BadAgent("role: agent or supervisor")
        if password != DEMO_PASSWORD or profile == "prod":
            check_password(password, profile)
        row = {
            "username": username,
            "display_name": display_name,
            "password_hash": self.hasher.hash(password),
            "role": role,
        }

        def upsert(connection: sa.engine.Connection) -> None:
            where = agents_table.c.username == username
            if connection.execute(
                sa.select(agents_table.c.username).where(where)
            ).first():
                connection.execute(agents_table.update().where(where).values(**row))
            else:
                connection.execute(
                    agents_table.insert(), {**row, "created_at": self.clock()}
                )

        self._write(upsert)
        return Agent(username, display_name, role)

    def agent(self, username: str) -> Optional[Agent]:
        """One agent, or None."""
        query = sa.select(agents_table).where(agents_table.c.username == username)
        row = self._read(lambda c: c.execute(query).mappings().first())
        return Agent(row["username"], row["display_name"], row["role"]) if row else None

    def agents(self) -> List[Agent]:
        """Every agent, by username."""
        query = sa.select(agents_table).order_by(agents_table.c.username)
        rows = self._read(lambda c: c.execute(query).mappings().all())
        return [Agent(r["username"], r["display_name"], r["role"]) for r in rows]

    def verify(self, username: str, password: str) -> Optional[Agent]:
        """The agent if the password is theirs, else None.

        An unknown username costs a hash check too, so the time taken does not
        tell which usernames exist.
        """
        if not isinstance(username, str) or not USERNAME.match(username):
            username = ""
        query = sa.select(agents_table).where(agents_table.c.username == username)
        row = self._read(lambda c: c.execute(query).mappings().first())
        if row is None:
            self._check(self._dummy(), password)
            return None
        if not self._check(row["password_hash"], password):
            return None
        if self.hasher.check_needs_rehash(row["password_hash"]):
            rehashed = self.hasher.hash(password)
            self._write(
                lambda c: c.execute(
                    agents_table.update()
                    .where(agents_table.c.username == username)
                    .values(password_hash=rehashed)
                )
            )
        return Agent(row["username"], row["display_name"], row["role"])

    def _check(self, stored: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(stored, password))
        except (VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    def ensure_demo_agents(self) -> List[str]:
        """Create the demo agents that do not exist yet (demo profile); their names."""
        created = []
        for username, display_name, role in DEMO_AGENTS:
            if self.agent(username) is None:
                self.add_agent(username, display_name, role, DEMO_PASSWORD)
                created.append(username)
        return created

    def demo_password_agents(self) -> List[str]:
        """The agents whose password is the demo one (the prod profile refuses them)."""
        query = sa.select(agents_table.c.username, agents_table.c.password_hash)
        rows = self._read(lambda c: c.execute(query).all())
        return sorted(
            username for username, stored in rows if self._check(stored, DEMO_PASSWORD)
        )

    # ------------------------------------------------------------------ sessions

    def create_session(self, agent: Agent) -> Tuple[str, str]:
        """A new session for the agent: (cookie token, CSRF token).

        Sessions unused for the idle time are deleted on the way.
        """
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self.clock()

        def insert(connection: sa.engine.Connection) -> None:
            connection.execute(
                sessions_table.delete().where(
                    sessions_table.c.last_seen_at < now - self.idle
                )
            )
            connection.execute(
                sessions_table.insert(),
                {
                    "token_hash": token_hash(token),
                    "username": agent.username,
                    "csrf_token": csrf,
                    "created_at": now,
                    "last_seen_at": now,
                },
            )

        self._write(insert)
        return token, csrf

    def session(self, token: Optional[str], touch: bool = True) -> Optional[Session]:
        """The live session of this cookie token, or None (unknown or idle too long).

        ``touch`` counts this as a use (every request but the live stream's
        polls, which must not keep an unattended console signed in).
        """
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        hashed = token_hash(token)
        query = (
            sa.select(
                sessions_table.c.csrf_token,
                sessions_table.c.last_seen_at,
                agents_table.c.username,
                agents_table.c.display_name,
                agents_table.c.role,
            )
            .select_from(
                sessions_table.join(
                    agents_table,
                    agents_table.c.username == sessions_table.c.username,
                )
            )
            .where(sessions_table.c.token_hash == hashed)
        )
        row = self._read(lambda c: c.execute(query).mappings().first())
        if row is None:
            return None
        now = self.clock()
        last_seen = _aware(row["last_seen_at"])
        assert last_seen is not None
        if now - last_seen > self.idle:
            self.end_session(token)
            return None
        if touch and now - last_seen > TOUCH_EVERY:
            self._write(
                lambda c: c.execute(
                    sessions_table.update()
                    .where(sessions_table.c.token_hash == hashed)
                    .values(last_seen_at=now)
                )
            )
        agent = Agent(row["username"], row["display_name"], row["role"])
        return Session(agent, row["csrf_token"], hashed)

    def end_session(self, token: str) -> None:
        """Sign out: the token opens nothing any more."""
        where = sessions_table.c.token_hash == token_hash(token)
        self._write(lambda c: c.execute(sessions_table.delete().where(where)))

    # --------------------------------------------------------------------- audit

    def audit(
        self,
        agent_id: str,
        action: str,
        case_id: Optional[str] = None,
        detail: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Add a line to the audit log (never a message's text)."""
        self._write(lambda c: self._audit(c, agent_id, action, case_id, detail))

    def _audit(
        self,
        connection: sa.engine.Connection,
        agent_id: str,
        action: str,
        case_id: Optional[str] = None,
        detail: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if action not in AUDIT_ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        connection.execute(
            audit_table.insert(),
            {
                "at": self.clock(),
                "agent_id": agent_id[:64],
                "action": action,
                "case_id": case_id,
                "detail": json.dumps(dict(detail), ensure_ascii=False)
                if detail
                else None,
            },
        )

    def audit_log(
        self, case_id: Optional[str] = None, limit: int = 200
    ) -> List[Dict[str, Any]]:
        """The latest audit lines (of one case if given), oldest first."""
        query = sa.select(audit_table).order_by(audit_table.c.id.desc()).limit(limit)
        if case_id is not None:
            query = query.where(audit_table.c.case_id == case_id)
        rows = self._read(lambda c: c.execute(query).mappings().all())
        return [
            {
                "id": row["id"],
                "at": iso(row["at"]),
                "agent_id": row["agent_id"],
                "action": row["action"],
                "case_id": row["case_id"],
                "detail": json.loads(row["detail"]) if row["detail"] else None,
            }
            for row in reversed(rows)
        ]

    # --------------------------------------------------------------------- cases

    def _case_query(self) -> sa.sql.Select:
        return sa.select(
            status_table,
            cases_table.c.summary,
            agents_table.c.display_name.label("agent_name"),
        ).select_from(
            status_table.outerjoin(
                cases_table, cases_table.c.case_id == status_table.c.case_id
            ).outerjoin(
                agents_table, agents_table.c.username == status_table.c.agent_id
            )
        )

    def _case_json(
        self, row: Mapping[str, Any], now: datetime, detail: bool = False
    ) -> Dict[str, Any]:
        try:
            summary = json.loads(row["summary"]) if row["summary"] else {}
        except ValueError:
            summary = {}
        if not isinstance(summary, dict):
            summary = {}
        created = _aware(row["created_at"])
        claimed = _aware(row["claimed_at"])
        assert created is not None
        waited_until = now if row["status"] == "waiting" else claimed
        case: Dict[str, Any] = {
            "case_id": row["case_id"],
            "conversation_id": row["conversation_id"],
            "status": row["status"],
            "channel": row["channel"],
            "scam": bool(row["scam"]),
            "agent_id": row["agent_id"],
            "agent_name": row["agent_name"],
            "created_at": iso(created),
            "claimed_at": iso(claimed),
            "wait_seconds": (
                max(0, int((waited_until - created).total_seconds()))
                if waited_until
                else None
            ),
            "problem": summary.get("problem"),
            "account_id": summary.get("account_id"),
        }
        if detail:
            case.update(
                {
                    "summary": summary,
                    "resolution": row["resolution"],
                    "first_reply_at": iso(row["first_reply_at"]),
                    "resolved_at": iso(row["resolved_at"]),
                    "updated_at": iso(row["updated_at"]),
                }
            )
        return case

    def cases(self, status: str, viewer: str = "") -> List[Dict[str, Any]]:
        """The cases of one status, in the desk's order.

        waiting: suspected scams first, then the oldest; active: the viewer's
        own first, then by claim time; resolved: the latest first.
        """
        if status not in CASE_STATUSES:
            raise ValueError(f"status must be one of {', '.join(CASE_STATUSES)}")
        query = self._case_query().where(status_table.c.status == status)
        c = status_table.c
        if status == "waiting":
            query = query.order_by(c.scam.desc(), c.created_at, c.case_id)
        elif status == "active":
            mine = sa.case((c.agent_id == viewer, 0), else_=1)
            query = query.order_by(mine, c.claimed_at, c.case_id)
        else:
            query = query.order_by(c.resolved_at.desc(), c.case_id)
        rows = self._read(
            lambda conn: conn.execute(query.limit(LIST_LIMIT)).mappings().all()
        )
        now = self.clock()
        return [self._case_json(row, now) for row in rows]

    def case(self, case_id: str) -> Optional[Dict[str, Any]]:
        """One case with its summary and resolution, or None."""
        query = self._case_query().where(status_table.c.case_id == case_id)
        row = self._read(lambda c: c.execute(query).mappings().first())
        return self._case_json(row, self.clock(), detail=True) if row else None

    def require_holder(self, case_id: str, agent_id: str) -> Dict[str, Any]:
        """The case, if it is active with this agent; else the error saying why."""
        case = self.case(case_id)
        if case is None:
            raise CaseNotFound(case_id)
        if case["status"] != "active":
            raise CaseConflict(f"the case is {case['status']}, not active")
        if case["agent_id"] != agent_id:
            raise NotHolder(case["agent_id"])
        return case

    def claim(self, case_id: str, agent_id: str) -> Tuple[Dict[str, Any], bool]:
        """Take a waiting case: ONE conditional UPDATE, its row count decides.

        Returns the case and whether this call took it (False: it was already
        this agent's). A case another agent holds raises CaseConflict naming
        the holder.
        """
        now = self.clock()
        c = status_table.c
        update = (
            status_table.update()
            .where(c.case_id == case_id)
            .where(c.status == "waiting")
            .values(status="active", agent_id=agent_id, claimed_at=now, updated_at=now)
        )

        def work(connection: sa.engine.Connection) -> bool:
            if connection.execute(update).rowcount != 1:
                return False
            self._audit(connection, agent_id, "claim", case_id)
            return True

        won = self._write(work)
        case = self.case(case_id)
        if case is None:
            raise CaseNotFound(case_id)
        if won or (case["status"] == "active" and case["agent_id"] == agent_id):
            return case, won
        if case["status"] == "active":
            raise CaseConflict("another agent holds the case", case["agent_id"])
        raise CaseConflict(f"the case is {case['status']}")

    def _holder_move(
        self,
        case_id: str,
        agent_id: str,
        values: Mapping[str, Any],
        action: str,
        detail: Optional[Mapping[str, Any]] = None,
        also: Optional[Callable[[sa.engine.Connection], None]] = None,
    ) -> Dict[str, Any]:
        """An UPDATE of an active case that only its holder may make."""
        c = status_table.c
        update = (
            status_table.update()
            .where(c.case_id == case_id)
            .where(c.status == "active")
            .where(c.agent_id == agent_id)
            .values(**values, updated_at=self.clock())
        )

        def work(connection: sa.engine.Connection) -> bool:
            if connection.execute(update).rowcount != 1:
                return False
            if also is not None:
                also(connection)
            self._audit(connection, agent_id, action, case_id, detail)
            return True

        if not self._write(work):
            self.require_holder(case_id, agent_id)  # raises why
            raise CaseConflict("the case changed meanwhile")  # pragma: no cover
        case = self.case(case_id)
        assert case is not None
        return case

    def unclaim(
        self, case_id: str, agent_id: str, reason: Optional[str] = None
    ) -> Dict[str, Any]:
        """Put one's active case back in the queue (``reason``: for the audit)."""
        return self._holder_move(
            case_id,
            agent_id,
            {"status": "waiting", "agent_id": None, "claimed_at": None},
            "unclaim",
            {"reason": reason} if reason else None,
        )

    def transfer(self, case_id: str, agent_id: str, to: str) -> Dict[str, Any]:
        """Hand one's active case to another agent."""
        self.require_holder(case_id, agent_id)
        if to == agent_id:
            raise CaseConflict("the case is already yours")
        if self.agent(to) is None:
            raise UnknownAgent(to)
        return self._holder_move(
            case_id, agent_id, {"agent_id": to}, "transfer", {"to": to}
        )

    def message_sent(self, case_id: str, agent_id: str) -> None:
        """An agent's message reached the user: the first reply's time, the audit."""
        now = self.clock()
        c = status_table.c

        def work(connection: sa.engine.Connection) -> None:
            connection.execute(
                status_table.update()
                .where(c.case_id == case_id)
                .where(c.first_reply_at.is_(None))
                .values(first_reply_at=now, updated_at=now)
            )
            self._audit(connection, agent_id, "message", case_id)

        self._write(work)

    def resolve(
        self, case_id: str, agent_id: str, note: Optional[str]
    ) -> Dict[str, Any]:
        """Close one's active case with the (masked) note; the outcome is handed_off."""
        now = self.clock()

        def outcome(connection: sa.engine.Connection) -> None:
            row = connection.execute(
                sa.select(status_table.c.conversation_id, cases_table.c.summary)
                .select_from(
                    status_table.outerjoin(
                        cases_table, cases_table.c.case_id == status_table.c.case_id
                    )
                )
                .where(status_table.c.case_id == case_id)
            ).first()
            conversation_id, summary = row[0], row[1]
            where = outcomes_table.c.conversation_id == conversation_id
            existing = connection.execute(
                sa.select(outcomes_table.c.outcome).where(where)
            ).first()
            if existing is None:
                try:
                    causes = list(
                        (json.loads(summary or "{}") or {}).get("causes") or []
                    )
                except (ValueError, AttributeError):
                    causes = []
                connection.execute(
                    outcomes_table.insert(),
                    {
                        "conversation_id": conversation_id,
                        "outcome": "handed_off",
                        "rating": None,
                        "causes": json.dumps(causes),
                        "updated_at": now,
                    },
                )
            elif existing[0] != "handed_off":
                connection.execute(
                    outcomes_table.update()
                    .where(where)
                    .values(outcome="handed_off", updated_at=now)
                )

        return self._holder_move(
            case_id,
            agent_id,
            {"status": "resolved", "resolved_at": now, "resolution": note or None},
            "resolve",
            also=outcome,
        )
