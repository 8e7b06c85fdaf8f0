"""The account and case stores on SQLite (embedded) and PostgreSQL (real server)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest

from actions.diagnosis.errors import AccountNotFound
from actions.diagnosis.facts import parse_facts
from actions.services.accounts import (
    SqlAccountStore,
    account_store,
    load_fixtures,
    seed,
)
from actions.services.cases import CaseStore
from actions.services.sql import StoreUnavailable
from tests.servers import Postgres


@pytest.fixture
def postgres_url(postgres: Postgres) -> Iterator[str]:
    """A throwaway database on a real PostgreSQL server, dropped afterwards."""
    name = postgres.create_database()
    try:
        yield postgres.url(name)
    finally:
        postgres.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_seeded_store_returns_fixture_facts(db_url: str) -> None:
    store = SqlAccountStore(db_url)
    assert seed(store) == len(load_fixtures())
    assert store.get("demo_account_frozen").get("account_status") == "frozen"
    assert store.get("demo_partial_facts").sesame_score is None
    with pytest.raises(AccountNotFound):
        store.get("nobody")
    with pytest.raises(AccountNotFound):
        store.get("x" * 500)


def test_put_replaces_a_record(db_url: str) -> None:
    store = SqlAccountStore(db_url)
    store.create_schema()
    store.put("u1", parse_facts({"bank_cards": 0}))
    store.put("u1", parse_facts({"bank_cards": 2}))
    assert store.get("u1").bank_cards == 2


def test_cases_and_outcomes(db_url: str) -> None:
    cases = CaseStore(db_url)
    case_id = cases.open_case(
        "conv-1", {"causes": ["no_bank_card"], "user_words": ["借呗没了"]}
    )
    assert cases.case(case_id)["causes"] == ["no_bank_card"]
    assert [c["case_id"] for c in cases.cases_for("conv-1")] == [case_id]
    cases.record_outcome("conv-1", "resolved_by_bot", ["no_bank_card"])
    cases.record_rating("conv-1", 5)
    cases.record_outcome("conv-2", "abandoned", [])
    cases.record_outcome("conv-3", "handed_off", ["account_frozen"])
    assert cases.outcome("conv-1")["rating"] == 5
    summary = cases.summary()
    assert summary["counts"] == {"resolved_by_bot": 1, "handed_off": 1, "abandoned": 1}
    assert summary["mean_rating"]["resolved_by_bot"] == 5.0
    with pytest.raises(ValueError):
        cases.record_outcome("conv-4", "vanished", [])
    with pytest.raises(ValueError):
        cases.record_rating("conv-1", 6)


def test_unreachable_store_raises_store_unavailable_quickly() -> None:
    store = SqlAccountStore("postgresql://postgres@127.0.0.1:1/none", timeout_s=1)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.get("demo_healthy")
    assert time.monotonic() - started < 10


def test_factory_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv("ACCOUNT_DB_URL", url)
    monkeypatch.setenv("ACCOUNT_LOOKUP_TIMEOUT", "0.5")
    store = account_store()
    assert (store.url, store.timeout_s) == (url, 0.5)
    monkeypatch.setenv("ACCOUNT_LOOKUP_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="ACCOUNT_LOOKUP_TIMEOUT"):
        account_store()


def test_every_demo_account_has_a_chinese_label_for_the_page() -> None:
    import re

    from actions.services.accounts import fixture_labels

    labels = fixture_labels()
    assert set(labels) == set(load_fixtures())
    for account, label in labels.items():
        assert re.search(r"[\u4e00-\u9fff]", label), account
