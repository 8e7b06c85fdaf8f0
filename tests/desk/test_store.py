"""The desk's store on SQLite and on a real PostgreSQL: agents, sessions, audit, cases."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from actions.services.cases import CaseStore
from actions.services.sql import StoreUnavailable
from desk.store import (
    DEMO_PASSWORD,
    BadAgent,
    CaseConflict,
    CaseNotFound,
    DeskStore,
    NotHolder,
    UnknownAgent,
    agents_table,
    sessions_table,
    token_hash,
)
from devtools.servers import Postgres
from tests.desk.support import FAST_HASHER, PASSWORD, Clock, open_case


@pytest.fixture
def postgres_url(postgres: Postgres) -> Iterator[str]:
    name = postgres.create_database()
    try:
        yield postgres.url(name)
    finally:
        postgres.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'desk.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db_url: str, clock: Clock) -> DeskStore:
    desk = DeskStore(db_url, hasher=FAST_HASHER, clock=clock)
    desk.ensure_schema()
    desk.add_agent("amy", "小美", "agent", PASSWORD)
    desk.add_agent("bob", "小波", "agent", PASSWORD)
    desk.add_agent("sue", "小苏", "supervisor", PASSWORD)
    return desk


def test_the_password_is_stored_as_an_argon2id_hash_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    store = DeskStore(url)  # the real costs
    store.add_agent("amy", "小美", "agent", PASSWORD)
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(agents_table.c.password_hash)
        ).scalar_one()
        everything = " ".join(
            str(value)
            for table in ("desk_agents",)
            for row in connection.execute(sa.text(f"SELECT * FROM {table}"))
            for value in row
        )
    engine.dispose()
    assert PASSWORD not in everything
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert store.verify("amy", PASSWORD) is not None
    assert store.verify("amy", PASSWORD + "x") is None
    assert store.verify("nobody", PASSWORD) is None


def test_agents_are_checked_when_added(store: DeskStore) -> None:
    for username, display, role, password, why in [
        ("Amy Smith", "x", "agent", PASSWORD, "username"),
        ("", "x", "agent", PASSWORD, "username"),
        ("amy2", "", "agent", PASSWORD, "display name"),
        ("amy2", "x" * 33, "agent", PASSWORD, "display name"),
        ("amy2", "x", "boss", PASSWORD, "role"),
        ("amy2", "x", "agent", "short", "at least 10"),
    ]:
        with pytest.raises(BadAgent, match=why):
            store.add_agent(username, display, role, password)
    with pytest.raises(BadAgent, match="demo password"):
        store.add_agent("amy2", "x", "agent", DEMO_PASSWORD, profile="prod")
    assert store.agent("amy2") is None


def test_adding_an_existing_agent_changes_name_role_and_password(
    store: DeskStore,
) -> None:
    store.add_agent("amy", "美美", "supervisor", "another-password")
    amy = store.agent("amy")
    assert amy is not None and (amy.display_name, amy.role) == ("美美", "supervisor")
    assert store.verify("amy", PASSWORD) is None
    assert store.verify("amy", "another-password") == amy
    assert [a.username for a in store.agents()] == ["amy", "bob", "sue"]


def test_demo_agents_and_the_demo_password_check(store: DeskStore) -> None:
    assert store.demo_password_agents() == []
    assert store.ensure_demo_agents() == ["agent1", "agent2"]
    assert store.ensure_demo_agents() == []
    agent1, agent2 = store.agent("agent1"), store.agent("agent2")
    assert agent1 is not None and (agent1.display_name, agent1.role) == (
        "小安",
        "supervisor",
    )
    assert agent2 is not None and (agent2.display_name, agent2.role) == (
        "小宁",
        "agent",
    )
    assert store.verify("agent1", DEMO_PASSWORD) == agent1
    assert store.demo_password_agents() == ["agent1", "agent2"]
    store.add_agent("agent1", "小安", "supervisor", "a-real-password")
    assert store.demo_password_agents() == ["agent2"]


def test_a_session_is_stored_as_a_hash_and_expires_when_idle(
    store: DeskStore, clock: Clock, db_url: str
) -> None:
    amy = store.agent("amy")
    assert amy is not None
    token, csrf = store.create_session(amy)
    assert len(token) >= 40 and len(csrf) >= 40 and token != csrf
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        (stored,) = connection.execute(sa.select(sessions_table.c.token_hash)).one()
    engine.dispose()
    assert stored == token_hash(token) and token not in stored
    session = store.session(token)
    assert session is not None and session.agent == amy and session.csrf_token == csrf
    # Used within the idle time: it lives on, past the idle time since sign-in.
    for _ in range(3):
        clock.advance(minutes=20)
        assert store.session(token) is not None
    # Looking without touching (the live stream) does not keep it alive.
    clock.advance(minutes=20)
    assert store.session(token, touch=False) is not None
    clock.advance(minutes=11)
    assert store.session(token) is None
    assert store.session(token) is None
    assert store.session(None) is None and store.session("x" * 500) is None
    assert store.session("made-up-token") is None


def test_sign_out_ends_the_session(store: DeskStore) -> None:
    amy = store.agent("amy")
    assert amy is not None
    token, _ = store.create_session(amy)
    other, _ = store.create_session(amy)
    store.end_session(token)
    assert store.session(token) is None
    assert store.session(other) is not None


def test_the_queue_order_and_the_case_fields(
    store: DeskStore, db_url: str, clock: Clock
) -> None:
    old = open_case(db_url, "c-old")
    new = open_case(db_url, "c-new", problem="想还款")
    scam = open_case(db_url, "c-scam", scam=True, account_id=None)
    clock.to_now()
    clock.advance(seconds=90)
    waiting = store.cases("waiting")
    assert [c["case_id"] for c in waiting] == [scam, old, new]
    first = waiting[1]
    assert first["conversation_id"] == "c-old" and first["status"] == "waiting"
    assert (
        first["problem"] == "借呗入口不见了"
        and first["account_id"] == "demo_account_frozen"
    )
    assert first["channel"] == "socketio" and first["scam"] is False
    assert first["agent_id"] is None and first["claimed_at"] is None
    assert 90 <= first["wait_seconds"] <= 100
    assert waiting[0]["scam"] is True and waiting[0]["account_id"] is None
    with pytest.raises(ValueError):
        store.cases("closed")
    detail = store.case(new)
    assert detail is not None and detail["summary"]["problem"] == "想还款"
    assert detail["resolution"] is None
    assert store.case("NOPE") is None


def test_claim_unclaim_transfer_resolve(store: DeskStore, db_url: str) -> None:
    case_id = open_case(db_url, "conv-1")
    case, taken = store.claim(case_id, "amy")
    assert taken and case["status"] == "active" and case["agent_id"] == "amy"
    assert case["agent_name"] == "小美" and case["claimed_at"]
    again, taken = store.claim(case_id, "amy")
    assert not taken and again["agent_id"] == "amy"
    with pytest.raises(CaseConflict) as conflict:
        store.claim(case_id, "bob")
    assert conflict.value.holder == "amy"
    with pytest.raises(CaseNotFound):
        store.claim("NOPE", "bob")
    # Only the holder may move it.
    for move in (
        lambda: store.unclaim(case_id, "bob"),
        lambda: store.transfer(case_id, "bob", "sue"),
        lambda: store.resolve(case_id, "bob", None),
        lambda: store.require_holder(case_id, "bob"),
    ):
        with pytest.raises(NotHolder):
            move()
    assert [c["case_id"] for c in store.cases("active", "bob")] == [case_id]
    with pytest.raises(UnknownAgent):
        store.transfer(case_id, "amy", "nobody")
    with pytest.raises(CaseConflict):
        store.transfer(case_id, "amy", "amy")
    moved = store.transfer(case_id, "amy", "bob")
    assert moved["agent_id"] == "bob" and moved["agent_name"] == "小波"
    back = store.unclaim(case_id, "bob")
    assert back["status"] == "waiting" and back["agent_id"] is None
    with pytest.raises(CaseConflict, match="waiting"):
        store.unclaim(case_id, "bob")
    store.claim(case_id, "sue")
    store.message_sent(case_id, "sue")
    replied = store.case(case_id)
    assert replied is not None and replied["first_reply_at"]
    store.message_sent(case_id, "sue")
    assert store.case(case_id)["first_reply_at"] == replied["first_reply_at"]
    done = store.resolve(case_id, "sue", "已解冻，用户确认")
    assert done["status"] == "resolved" and done["resolution"] == "已解冻，用户确认"
    assert done["resolved_at"]
    with pytest.raises(CaseConflict):
        store.claim(case_id, "amy")
    with pytest.raises(CaseConflict, match="resolved"):
        store.resolve(case_id, "sue", None)
    assert CaseStore(db_url).outcome("conv-1")["outcome"] == "handed_off"
    actions = [(line["agent_id"], line["action"]) for line in store.audit_log(case_id)]
    assert actions == [
        ("amy", "claim"),
        ("amy", "transfer"),
        ("bob", "unclaim"),
        ("sue", "claim"),
        ("sue", "message"),
        ("sue", "message"),
        ("sue", "resolve"),
    ]
    assert store.audit_log(case_id)[1]["detail"] == {"to": "bob"}


def test_resolve_keeps_an_existing_outcome_as_handed_off(
    store: DeskStore, db_url: str
) -> None:
    cases = CaseStore(db_url)
    case_id = open_case(db_url, "conv-2")
    cases.record_outcome("conv-2", "abandoned", ["account_frozen"])
    cases.record_rating("conv-2", 4)
    store.claim(case_id, "amy")
    store.resolve(case_id, "amy", None)
    outcome = cases.outcome("conv-2")
    assert outcome is not None
    assert (outcome["outcome"], outcome["rating"], outcome["causes"]) == (
        "handed_off",
        4,
        ["account_frozen"],
    )
    # A new case for the conversation can be opened after the resolve.
    assert cases.open_case("conv-2", {"problem": "again"}) != case_id


def claim_at_once(
    stores: List[DeskStore], names: List[str], case_id: str
) -> Tuple[List[str], List[str]]:
    """Each store claims for its agent in its own thread, released together."""
    start = threading.Barrier(len(names))
    won: List[str] = []
    lost: List[str] = []

    def attempt(store: DeskStore, name: str) -> None:
        start.wait()
        try:
            store.claim(case_id, name)
            won.append(name)
        except CaseConflict as error:
            lost.append(str(error.holder))

    threads = [
        threading.Thread(target=attempt, args=pair)
        for pair in zip(stores, names, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won, lost


def test_two_agents_claiming_at_once_exactly_one_wins(db_url: str) -> None:
    """Threads, each with its own store (as on separate page servers)."""
    setup = DeskStore(db_url, hasher=FAST_HASHER)
    setup.ensure_schema()
    names = [f"agent{i}" for i in range(6)]
    for name in names:
        setup.add_agent(name, name, "agent", PASSWORD)
    for round_ in range(5):
        case_id = open_case(db_url, f"race-{round_}")
        stores = [DeskStore(db_url, hasher=FAST_HASHER) for _ in names]
        won, lost = claim_at_once(stores, names, case_id)
        assert len(won) == 1, (won, lost)
        assert lost == [won[0]] * (len(names) - 1)
        assert setup.case(case_id)["agent_id"] == won[0]
        claims = [
            line for line in setup.audit_log(case_id) if line["action"] == "claim"
        ]
        assert len(claims) == 1


def test_everything_is_still_there_for_a_new_store(
    store: DeskStore, db_url: str
) -> None:
    """A restart: another store object (another process) over the same database."""
    amy = store.agent("amy")
    assert amy is not None
    token, csrf = store.create_session(amy)
    case_id = open_case(db_url, "conv-restart")
    store.claim(case_id, "amy")
    later = DeskStore(db_url, hasher=PasswordHasher())
    session = later.session(token)
    assert session is not None and session.csrf_token == csrf
    assert later.case(case_id)["agent_id"] == "amy"
    assert [line["action"] for line in later.audit_log(case_id)] == ["claim"]
    assert later.verify("amy", PASSWORD) == amy


def test_an_unreachable_database_raises_store_unavailable() -> None:
    store = DeskStore("postgresql://postgres@127.0.0.1:1/none", timeout_s=1)
    with pytest.raises(StoreUnavailable):
        store.cases("waiting")
