"""Shared pytest fixtures: the domain, a dispatcher, a seeded account store, real servers.

The helpers behind them (and the ones scripts share) live in ``devtools/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
from rasa_sdk.executor import CollectingDispatcher

from devtools.project import load_domain
from devtools.servers import Postgres, Redis, postgres_server, redis_server
from settings.processes import clear_settings


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Each test reads the settings anew: a process reads them once, but a test
    changes the environment with monkeypatch first."""
    clear_settings()
    yield
    clear_settings()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server (the machine's, or a throwaway one; never skipped)."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis() -> Iterator[Redis]:
    """A real Redis server (the machine's, or a throwaway one; never skipped)."""
    with redis_server() as server:
        yield server


@pytest.fixture
def domain() -> Dict[str, Any]:
    return load_domain()


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


@pytest.fixture
def seeded_db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite account store with the fixture accounts, set as ACCOUNT_DB_URL."""
    from actions.services.accounts import SqlAccountStore, seed

    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    seed(SqlAccountStore(url))
    monkeypatch.setenv("ACCOUNT_DB_URL", url)
    return url
