"""The account store: account facts by account id, behind one interface.

SQLAlchemy over SQLite by default (`.rasa/accounts.db`, created and seeded by
`make`), PostgreSQL when ``ACCOUNT_DB_URL`` points there. Every lookup is
bounded by ``ACCOUNT_LOOKUP_TIMEOUT``; a store that is down or slow raises
`StoreUnavailable` so the bot can fall back to asking the user.

    python -m actions.services.accounts seed     # create the table, load fixtures
    python -m actions.services.accounts list     # fixture ids and their facts
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional, Protocol, Sequence, Tuple

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from actions.diagnosis.errors import AccountNotFound, FactsError
from actions.diagnosis.facts import AccountFacts, parse_facts
from actions.services.sql import StoreUnavailable, engine_for, ensure_database
from settings import ActionSettings, action_settings

FIXTURES = Path(__file__).with_name("fixtures") / "accounts.json"
MAX_ID_LENGTH = 64

_metadata = sa.MetaData()
accounts_table = sa.Table(
    "accounts",
    _metadata,
    sa.Column("account_id", sa.String(MAX_ID_LENGTH), primary_key=True),
    sa.Column("facts", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

__all__ = ["AccountNotFound", "AccountStore", "SqlAccountStore", "StoreUnavailable"]


class AccountStore(Protocol):
    """What the actions need from an account store."""

    def get(self, account_id: str) -> AccountFacts:
        """Facts of the account; AccountNotFound or StoreUnavailable otherwise."""


class SqlAccountStore:
    """Account facts in a SQL table, one JSON record per account."""

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    @property
    def _engine(self) -> sa.engine.Engine:
        return engine_for(self.url, self.timeout_s)

    def create_schema(self) -> None:
        """Create the table if it does not exist."""
        try:
            _metadata.create_all(self._engine, tables=[accounts_table])
        except SQLAlchemyError as error:
            raise StoreUnavailable(_short(error)) from None

    def get(self, account_id: str) -> AccountFacts:
        """Facts of one account."""
        if not account_id or len(account_id) > MAX_ID_LENGTH:
            raise AccountNotFound(f"no account {account_id[:MAX_ID_LENGTH]!r}")
        query = sa.select(accounts_table.c.facts).where(
            accounts_table.c.account_id == account_id
        )
        try:
            with self._engine.connect() as connection:
                row = connection.execute(query).first()
        except SQLAlchemyError as error:
            raise StoreUnavailable(_short(error)) from None
        if row is None:
            raise AccountNotFound(f"no account {account_id!r}")
        try:
            return parse_facts(json.loads(row[0]))
        except (ValueError, FactsError) as error:
            raise StoreUnavailable(
                f"account {account_id!r} has a bad record: {error}"
            ) from None

    def put(self, account_id: str, facts: AccountFacts) -> None:
        """Insert or replace one account's facts."""
        self.put_many([(account_id, facts)])

    def put_many(self, records: Iterable[Tuple[str, AccountFacts]]) -> int:
        """Insert or replace several accounts in one transaction."""
        now = datetime.now(timezone.utc)
        rows = [
            {
                "account_id": account_id,
                "facts": json.dumps(facts.to_dict(), ensure_ascii=False),
                "updated_at": now,
            }
            for account_id, facts in records
        ]
        ids = [row["account_id"] for row in rows]
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    accounts_table.delete().where(accounts_table.c.account_id.in_(ids))
                )
                if rows:
                    connection.execute(accounts_table.insert(), rows)
        except SQLAlchemyError as error:
            raise StoreUnavailable(_short(error)) from None
        return len(rows)


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:200]


def load_fixtures(path: Path = FIXTURES) -> Dict[str, AccountFacts]:
    """The demo accounts (validated like any record)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {
        account_id: parse_facts(record)
        for account_id, record in raw["accounts"].items()
    }


def fixture_descriptions(path: Path = FIXTURES) -> Mapping[str, str]:
    """What each demo account shows (for the README and `list`)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return dict(raw.get("descriptions", {}))


def fixture_labels(path: Path = FIXTURES) -> Mapping[str, str]:
    """Short Chinese names of the demo accounts (the chat page's demo switch)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    labels: Mapping[str, str] = raw.get("labels_zh", {})
    return {account: labels.get(account, account) for account in raw["descriptions"]}


def account_store(settings: Optional[ActionSettings] = None) -> SqlAccountStore:
    """The one place that picks the store from the configuration."""
    settings = settings or action_settings()
    return SqlAccountStore(settings.account_db_url, settings.lookup_timeout_s)


def seed(store: Optional[SqlAccountStore] = None) -> int:
    """Create the table and (re)load the fixture accounts."""
    if store is None:
        settings = action_settings()
        ensure_database(settings.account_db_url, settings.lookup_timeout_s)
        store = account_store(settings)
    store.create_schema()
    return store.put_many(load_fixtures().items())


def main(argv: Sequence[str]) -> int:
    """`seed` or `list`."""
    command = argv[0] if argv else ""
    try:
        if command == "seed":
            count = seed()
            print(f"account store: {count} fixture accounts in {account_store().url}")
            return 0
        if command == "list":
            for account_id, text in fixture_descriptions().items():
                print(f"{account_id:34} {text}")
            return 0
    except StoreUnavailable as error:
        print(f"account store unavailable: {error}", file=sys.stderr)
        return 3
    print("usage: python -m actions.services.accounts seed|list", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
