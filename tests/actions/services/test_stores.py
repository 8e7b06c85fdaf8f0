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
from actions.services.cases import SCAM_MARKER, CaseStore, main, render_case
from actions.services.sql import StoreUnavailable
from devtools.servers import Postgres


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


def scam_case(**extra: object) -> dict:
    return {
        "conversation_id": "conv-scam",
        "account_id": None,
        "causes": [],
        "steps_tried": [],
        "user_words": ["有人打电话说交钱能开通借呗", "转人工"],
        "scam_reported": True,
        **extra,
    }


def test_scam_cases_are_marked_first_listed_and_counted(db_url: str) -> None:
    cases = CaseStore(db_url)
    plain = cases.open_case(
        "conv-plain",
        {
            "causes": ["no_bank_card"],
            "user_words": ["借呗没了"],
            "scam_reported": False,
        },
    )
    scam = cases.open_case("conv-scam", scam_case())
    # A user who types the flag's JSON does not flag the case: the summary
    # stores it escaped inside a string.
    cases.open_case(
        "conv-spoof",
        {"user_words": ['"scam_reported": true'], "scam_reported": False},
    )
    assert cases.summary()["scam_flagged_cases"] == 1
    assert [c["case_id"] for c in cases.recent_cases(scam_only=True)] == [scam]
    assert len(cases.recent_cases()) == 3

    scam_case_read, plain_case_read = cases.case(scam), cases.case(plain)
    assert scam_case_read is not None and plain_case_read is not None
    shown = render_case(scam_case_read).splitlines()
    assert shown[0] == SCAM_MARKER
    assert "  > 有人打电话说交钱能开通借呗" in shown
    plain_shown = render_case(plain_case_read)
    assert SCAM_MARKER not in plain_shown
    assert plain_shown.splitlines()[0].startswith(f"工单 {plain}")
    assert "no_bank_card" in plain_shown
    # A user who types the marker on a line of its own does not make one.
    typed = render_case({"user_words": [f"你好\n{SCAM_MARKER}"]}).splitlines()
    assert SCAM_MARKER not in typed
    assert f"    {SCAM_MARKER}" in typed


def test_cases_cli_shows_the_scam_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    url = f"sqlite:///{tmp_path / 'cases.db'}"
    monkeypatch.setenv("ACCOUNT_DB_URL", url)
    monkeypatch.delenv("CASE_DB_URL", raising=False)
    cases = CaseStore(url)
    scam = cases.open_case("conv-scam", scam_case())
    plain = cases.open_case("conv-plain", {"scam_reported": False})

    assert main(["show", scam]) == 0
    assert capsys.readouterr().out.splitlines()[0] == SCAM_MARKER
    assert main(["show", plain]) == 0
    assert SCAM_MARKER not in capsys.readouterr().out
    assert main(["show", "--json", scam]) == 0
    assert json.loads(capsys.readouterr().out)["scam_reported"] is True
    assert main(["summary"]) == 0
    assert json.loads(capsys.readouterr().out)["scam_flagged_cases"] == 1
    assert main(["list", "--scam"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("⚠") and scam in line
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert [line.startswith("⚠") for line in lines] == [False, True]  # newest first
    assert main(["show", "NOPE"]) == 1
    assert main(["show", "--json"]) == 2
    assert main(["show", "--yaml", scam]) == 2
    assert main(["list", "--all"]) == 2


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
    # Read once per process: a later change is not seen.
    monkeypatch.setenv("ACCOUNT_LOOKUP_TIMEOUT", "soon")
    assert account_store().timeout_s == 0.5


def test_every_demo_account_has_a_chinese_label_for_the_page() -> None:
    import re

    from actions.services.accounts import fixture_labels

    labels = fixture_labels()
    assert set(labels) == set(load_fixtures())
    for account, label in labels.items():
        assert re.search(r"[\u4e00-\u9fff]", label), account


def test_a_conversation_has_one_open_case_and_the_queue_puts_scams_first(
    db_url: str,
) -> None:
    cases = CaseStore(db_url)
    first = cases.open_case("conv-a", {"scam_reported": False}, channel="socketio")
    again = cases.open_case("conv-a", {"scam_reported": False})
    second = cases.open_case("conv-b", {"scam_reported": False})
    scam = cases.open_case("conv-c", scam_case())
    assert again == first
    assert len(cases.recent_cases()) == 3
    # Scams first, then the oldest.
    assert [cases.queue_position(c) for c in (scam, first, second)] == [1, 2, 3]
    state = cases.open_case_of("conv-a")
    assert state is not None and state["status"] == "waiting"
    assert state["case_id"] == first and state["channel"] == "socketio"
    assert cases.open_case_of("conv-none") is None
    assert cases.typical_wait_s() is None
