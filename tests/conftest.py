"""Shared test helpers: a tracker factory, the loaded domain, the test stories' messages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from tests.servers import Postgres, Redis, postgres_server, redis_server

ROOT = Path(__file__).resolve().parent.parent


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


def load_domain() -> Dict[str, Any]:
    """The domain folder merged the way Rasa merges it (responses, intents, …)."""
    merged: Dict[str, Any] = {
        "intents": [],
        "entities": [],
        "actions": [],
        "responses": {},
    }
    for path in sorted((ROOT / "domain").glob("*.yml")):
        part = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key in ("intents", "entities", "actions"):
            merged[key].extend(part.get(key, []))
        merged["responses"].update(part.get("responses", {}))
    return merged


def story_messages(folder: Path) -> List[Tuple[str, str]]:
    """(intent, text) of every user message of the test stories, markup removed."""
    markup = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
    pairs = []
    for path in sorted(folder.glob("*.yml")):
        for story in yaml.safe_load(path.read_text(encoding="utf-8"))["stories"]:
            for step in story["steps"]:
                if "user" in step:
                    text = markup.sub(r"\1", step["user"]).strip()
                    pairs.append((step.get("intent", ""), text))
    return pairs


def make_tracker(
    sender_id: str = "test_user",
    slots: Dict[str, Any] | None = None,
    latest_message: Dict[str, Any] | None = None,
    events: List[Dict[str, Any]] | None = None,
) -> Tracker:
    """A rasa_sdk Tracker as the action server would receive it."""
    return Tracker(
        sender_id=sender_id,
        slots=slots or {},
        latest_message=latest_message or {},
        events=events or [],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name=None,
    )


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
