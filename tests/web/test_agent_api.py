"""The agent desk's HTTP API (web/agent_api.py) on SQLite and on a real PostgreSQL.

A real page server application (aiohttp's TestClient) over real stores; the
relay to Rasa is a fake that records (or refuses) what it is asked.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Tuple,
)

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from limits.storage import MemoryStorage

from actions.services.cases import CaseStore
from desk.store import DEMO_PASSWORD, DeskStore
from desk.transcript import TranscriptReader
from devtools.servers import Postgres
from tests.desk.support import (
    FAST_HASHER,
    PASSWORD,
    Clock,
    FakeRelay,
    bot,
    open_case,
    record,
    tracker_store,
    user,
)
from web import agent_api
from web.agent_api import API, COOKIE, Desk, LoginLimit, prepare
from web.server import PageSettings, create_app

ROOT = Path(__file__).resolve().parents[2]
JSON = "application/json"


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
def tracker_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tracker.db'}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_desk(
    db_url: str,
    tracker_url: str,
    relay: Optional[FakeRelay] = None,
    clock: Optional[Clock] = None,
    **options: Any,
) -> Desk:
    store = (
        DeskStore(db_url, hasher=FAST_HASHER, clock=clock)
        if clock
        else DeskStore(db_url, hasher=FAST_HASHER)
    )
    return Desk(
        store=store,
        transcripts=TranscriptReader(tracker_url),
        relay=relay or FakeRelay(),
        login_limit=LoginLimit("5/5 minutes", "12/5 minutes", MemoryStorage()),
        poll_s=0.05,
        **options,
    )


@pytest.fixture
def relay() -> FakeRelay:
    return FakeRelay()


@pytest.fixture
def desk(db_url: str, tracker_url: str, relay: FakeRelay, clock: Clock) -> Desk:
    built = make_desk(db_url, tracker_url, relay, clock)
    built.store.ensure_schema()
    built.store.add_agent("amy", "小美", "agent", PASSWORD)
    built.store.add_agent("bob", "小波", "agent", PASSWORD)
    built.store.add_agent("sue", "小苏", "supervisor", PASSWORD)
    return built


Clients = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    """Page servers: ``await clients(desk)`` is a new client of a new app for it
    (several clients may share one app: ``app=``)."""
    started: List[TestClient] = []

    async def make(
        desk: Optional[Desk] = None,
        app_of: Optional[TestClient] = None,
        settings: Optional[PageSettings] = None,
        app: Optional[web.Application] = None,
    ) -> TestClient:
        if app_of is not None:
            server = app_of.server
        else:
            server = TestServer(app or create_app(settings or PageSettings(), desk))
        client = TestClient(server)
        await client.start_server()
        started.append(client)
        return client

    yield make
    for client in reversed(started):
        await client.close()


async def sign_in(
    client: TestClient, username: str = "amy", password: str = PASSWORD
) -> str:
    """Sign in; the client keeps the cookie; returns the CSRF token."""
    response = await client.post(
        f"{API}/login", json={"username": username, "password": password}
    )
    assert response.status == 200, await response.text()
    return str((await response.json())["csrf_token"])


async def post(
    client: TestClient, path: str, csrf: str, body: Any = None
) -> ClientResponse:
    return await client.post(
        f"{API}/{path}",
        json={} if body is None else body,
        headers={"X-CSRF-Token": csrf},
    )


async def error_of(response: ClientResponse, status: int) -> Dict[str, Any]:
    assert response.status == status, (response.status, await response.text())
    assert response.content_type == JSON
    body = await response.json()
    assert isinstance(body["error"], str) and body["error"]
    return dict(body)


ENDPOINTS = [
    ("POST", "logout"),
    ("GET", "me"),
    ("GET", "cases"),
    ("GET", "cases?status=active"),
    ("GET", "cases/{case}"),
    ("GET", "cases/{case}/stream"),
    ("POST", "cases/{case}/claim"),
    ("POST", "cases/{case}/unclaim"),
    ("POST", "cases/{case}/transfer"),
    ("POST", "cases/{case}/messages"),
    ("POST", "cases/{case}/resolve"),
    ("GET", "agents"),
]
POSTS = [path for method, path in ENDPOINTS if method == "POST"]


# ---------------------------------------------------------------------- sign-in


async def test_sign_in_sets_a_strict_cookie_and_gives_the_csrf_token(
    desk: Desk, clients: Clients
) -> None:
    client = await clients(desk)
    response = await client.post(
        f"{API}/login", json={"username": "amy", "password": PASSWORD}
    )
    assert response.status == 200
    body = await response.json()
    assert body["username"] == "amy" and body["display_name"] == "小美"
    assert body["role"] == "agent" and len(body["csrf_token"]) >= 40
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    attributes = {
        part.strip().split("=")[0].lower(): part for part in cookie.split(";")
    }
    assert "httponly" in attributes and "secure" not in attributes
    assert attributes["samesite"].strip() == "SameSite=Strict"
    assert attributes["path"].strip() == "Path=/agent"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Content-Security-Policy" in response.headers
    me = await client.get(f"{API}/me")
    assert await me.json() == {
        "username": "amy",
        "display_name": "小美",
        "role": "agent",
        "csrf_token": body["csrf_token"],
    }
    assert [line["action"] for line in desk.store.audit_log()] == ["login"]


async def test_the_cookie_is_secure_when_configured(
    db_url: str, tracker_url: str, clients: Clients
) -> None:
    desk = make_desk(db_url, tracker_url, cookie_secure=True)
    desk.store.add_agent("amy", "小美", "agent", PASSWORD)
    client = await clients(desk)
    response = await client.post(
        f"{API}/login", json={"username": "amy", "password": PASSWORD}
    )
    assert response.status == 200
    assert "Secure" in response.headers["Set-Cookie"]


async def test_sign_out_ends_the_session(desk: Desk, clients: Clients) -> None:
    client = await clients(desk)
    csrf = await sign_in(client)
    response = await post(client, "logout", csrf)
    assert response.status == 200
    assert (
        f'{COOKIE}=""' in response.headers["Set-Cookie"]
        or "Max-Age=0" in response.headers["Set-Cookie"]
    )
    await error_of(await client.get(f"{API}/me"), 401)
    actions = [line["action"] for line in desk.store.audit_log()]
    assert actions == ["login", "logout"]


async def test_wrong_password_is_401_and_repeated_failures_are_limited(
    desk: Desk, clients: Clients
) -> None:
    client = await clients(desk)
    for _ in range(5):
        response = await client.post(
            f"{API}/login", json={"username": "amy", "password": "wrong-password"}
        )
        await error_of(response, 401)
    limited = await client.post(
        f"{API}/login", json={"username": "amy", "password": "wrong-password"}
    )
    body = await error_of(limited, 429)
    assert (
        "登录尝试过多" in body["error"] and "too many sign-in attempts" in body["error"]
    )
    assert int(limited.headers["Retry-After"]) > 0 and body["retry_after"] > 0
    # Past the limit the right password is refused too, for that username only.
    await error_of(
        await client.post(
            f"{API}/login", json={"username": "amy", "password": PASSWORD}
        ),
        429,
    )
    await sign_in(client, "bob")
    failed = [
        line for line in desk.store.audit_log() if line["action"] == "login_failed"
    ]
    assert len(failed) == 5 and failed[0]["agent_id"] == "amy"
    assert "wrong-password" not in json.dumps(desk.store.audit_log())


async def test_failures_from_one_address_are_limited_across_usernames(
    desk: Desk, clients: Clients
) -> None:
    client = await clients(desk)
    for index in range(12):
        response = await client.post(
            f"{API}/login", json={"username": f"guess{index}", "password": "x"}
        )
        await error_of(response, 401)
    await error_of(
        await client.post(
            f"{API}/login", json={"username": "sue", "password": PASSWORD}
        ),
        429,
    )


async def test_an_idle_session_expires(
    desk: Desk, clients: Clients, clock: Clock
) -> None:
    client = await clients(desk)
    await sign_in(client)
    clock.advance(minutes=25)
    assert (await client.get(f"{API}/me")).status == 200
    clock.advance(minutes=25)
    assert (await client.get(f"{API}/me")).status == 200
    clock.advance(minutes=31)
    await error_of(await client.get(f"{API}/me"), 401)


# ------------------------------------------------------------- 401, 403 for all


async def test_without_a_session_every_endpoint_is_401(
    desk: Desk, db_url: str, clients: Clients
) -> None:
    case_id = open_case(db_url, "conv-1")
    client = await clients(desk)
    for cookie in (None, "made-up", "x" * 300):
        if cookie:
            client.session.cookie_jar.update_cookies({COOKIE: cookie})
        for method, path in ENDPOINTS:
            response = await client.request(
                method,
                f"{API}/{path.format(case=case_id)}",
                json={"text": "hi", "to": "bob"},
            )
            await error_of(response, 401)


async def test_changes_without_the_right_csrf_token_are_403(
    desk: Desk, db_url: str, clients: Clients, relay: FakeRelay
) -> None:
    case_id = open_case(db_url, "conv-1")
    client = await clients(desk)
    csrf = await sign_in(client)
    for path in POSTS:
        for headers in (
            {},
            {"X-CSRF-Token": ""},
            {"X-CSRF-Token": csrf[:-1] + "x"},
            {"X-CSRF-Token": "头"},
        ):
            response = await client.post(
                f"{API}/{path.format(case=case_id)}",
                json={"text": "hi", "to": "bob"},
                headers=headers,
            )
            await error_of(response, 403)
    assert relay.calls == []
    assert desk.store.case(case_id)["status"] == "waiting"
    assert (await client.get(f"{API}/me")).status == 200  # still signed in


async def test_a_cross_site_request_is_refused(desk: Desk, clients: Clients) -> None:
    client = await clients(desk)
    response = await client.post(
        f"{API}/login",
        json={"username": "amy", "password": PASSWORD},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    await error_of(response, 403)


# ------------------------------------------------------------------ the cases


async def test_the_queue_the_case_view_and_the_transcript(
    desk: Desk, db_url: str, tracker_url: str, clients: Clients
) -> None:
    plain = open_case(db_url, "conv-plain")
    scam = open_case(db_url, "conv-scam", scam=True)
    await record(
        tracker_store(tracker_url),
        "conv-plain",
        user("借呗不见了 <img src=x onerror=alert(1)>"),
        bot("已为您转接人工客服"),
    )
    client = await clients(desk)
    await sign_in(client)
    waiting = (await (await client.get(f"{API}/cases?status=waiting")).json())["cases"]
    assert [c["case_id"] for c in waiting] == [scam, plain]
    assert set(waiting[0]) >= {
        "case_id",
        "conversation_id",
        "status",
        "channel",
        "scam",
        "agent_id",
        "agent_name",
        "created_at",
        "claimed_at",
        "wait_seconds",
        "problem",
        "account_id",
    }
    assert (await (await client.get(f"{API}/cases")).json())["cases"] == waiting
    shown = await (await client.get(f"{API}/cases/{plain}")).json()
    assert shown["case"]["conversation_id"] == "conv-plain"
    assert shown["case"]["summary"]["problem"] == "借呗入口不见了"
    assert [(e["from"], e["text"]) for e in shown["transcript"]] == [
        ("user", "借呗不见了 <img src=x onerror=alert(1)>"),
        ("bot", "已为您转接人工客服"),
    ]
    agents = await (await client.get(f"{API}/agents")).json()
    assert agents == [
        {"username": "amy", "display_name": "小美", "role": "agent"},
        {"username": "bob", "display_name": "小波", "role": "agent"},
        {"username": "sue", "display_name": "小苏", "role": "supervisor"},
    ]


async def test_claim_write_resolve(
    desk: Desk, db_url: str, clients: Clients, relay: FakeRelay
) -> None:
    case_id = open_case(db_url, "conv-1")
    client = await clients(desk)
    csrf = await sign_in(client)
    claimed = await post(client, f"cases/{case_id}/claim", csrf)
    assert claimed.status == 200
    case = await claimed.json()
    assert (
        case["status"] == "active"
        and case["agent_id"] == "amy"
        and case["agent_name"] == "小美"
    )
    assert relay.calls == [("joined", "conv-1", "amy", "小美")]
    # Claiming one's own case again is fine and tells the user nothing twice.
    assert (await post(client, f"cases/{case_id}/claim", csrf)).status == 200
    assert len(relay.calls) == 1
    sent = await post(
        client,
        f"cases/{case_id}/messages",
        csrf,
        {"text": "  您好，请核对 13812345678 \n"},
    )
    assert sent.status == 200
    assert (await sent.json())["text"] == "您好，请核对 138****5678"
    assert relay.calls[-1] == (
        "message",
        "conv-1",
        "您好，请核对 138****5678",
        "amy",
        "小美",
    )
    assert desk.store.case(case_id)["first_reply_at"]
    resolved = await post(
        client,
        f"cases/{case_id}/resolve",
        csrf,
        {"note": "已解冻，身份证 11010519491231002X 已核验"},
    )
    assert resolved.status == 200
    done = await resolved.json()
    assert done["status"] == "resolved" and done["resolved_at"]
    assert done["resolution"] == "已解冻，身份证 110***********002X 已核验"
    assert relay.calls[-1] == ("resolved", "conv-1", "amy", "小美")
    assert CaseStore(db_url).outcome("conv-1")["outcome"] == "handed_off"
    await error_of(
        await post(client, f"cases/{case_id}/messages", csrf, {"text": "还在吗"}), 409
    )
    actions = [line["action"] for line in desk.store.audit_log(case_id)]
    assert actions == ["claim", "message", "resolve"]
    assert "13812345678" not in json.dumps(desk.store.audit_log())


async def test_resolve_without_a_note(
    desk: Desk, db_url: str, clients: Clients
) -> None:
    case_id = open_case(db_url, "conv-1")
    client = await clients(desk)
    csrf = await sign_in(client)
    await post(client, f"cases/{case_id}/claim", csrf)
    for body in ({}, {"note": None}, {"note": "   "}):
        second = open_case(db_url, f"conv-{len(str(body))}")
        await post(client, f"cases/{second}/claim", csrf)
        response = await post(client, f"cases/{second}/resolve", csrf, body)
        assert response.status == 200 and (await response.json())["resolution"] is None


async def test_another_agents_active_case_is_403(
    desk: Desk, db_url: str, clients: Clients, relay: FakeRelay
) -> None:
    case_id = open_case(db_url, "conv-1")
    amy = await clients(desk)
    bob = await clients(app_of=amy)
    sue = await clients(app_of=amy)
    amy_csrf = await sign_in(amy)
    bob_csrf = await sign_in(bob, "bob")
    await sign_in(sue, "sue")
    assert (await post(amy, f"cases/{case_id}/claim", amy_csrf)).status == 200
    calls = list(relay.calls)
    conflict = await error_of(await post(bob, f"cases/{case_id}/claim", bob_csrf), 409)
    assert conflict["agent_id"] == "amy"
    for path, body in [
        (f"cases/{case_id}/messages", {"text": "我来"}),
        (f"cases/{case_id}/resolve", {"note": "x"}),
        (f"cases/{case_id}/unclaim", {}),
        (f"cases/{case_id}/transfer", {"to": "bob"}),
    ]:
        refused = await error_of(await post(bob, path, bob_csrf, body), 403)
        assert refused["agent_id"] == "amy"
    await error_of(await bob.get(f"{API}/cases/{case_id}"), 403)
    await error_of(await bob.get(f"{API}/cases/{case_id}/stream"), 403)
    # A supervisor reads it (and still cannot write to it).
    assert (await sue.get(f"{API}/cases/{case_id}")).status == 200
    assert relay.calls == calls
    # Bob sees it in the active list, Amy's own first for Amy.
    mine = open_case(db_url, "conv-2")
    await post(bob, f"cases/{mine}/claim", bob_csrf)
    for client, first in ((amy, case_id), (bob, mine)):
        active = (await (await client.get(f"{API}/cases?status=active")).json())[
            "cases"
        ]
        assert active[0]["case_id"] == first and len(active) == 2


async def test_unclaim_and_transfer(desk: Desk, db_url: str, clients: Clients) -> None:
    case_id = open_case(db_url, "conv-1")
    amy = await clients(desk)
    bob = await clients(app_of=amy)
    amy_csrf = await sign_in(amy)
    bob_csrf = await sign_in(bob, "bob")
    await post(amy, f"cases/{case_id}/claim", amy_csrf)
    moved = await post(amy, f"cases/{case_id}/transfer", amy_csrf, {"to": "bob"})
    assert moved.status == 200 and (await moved.json())["agent_id"] == "bob"
    await error_of(
        await post(amy, f"cases/{case_id}/messages", amy_csrf, {"text": "x"}), 403
    )
    back = await post(bob, f"cases/{case_id}/unclaim", bob_csrf)
    assert back.status == 200 and (await back.json())["status"] == "waiting"
    await error_of(await post(bob, f"cases/{case_id}/unclaim", bob_csrf), 409)
    actions = [line["action"] for line in desk.store.audit_log(case_id)]
    assert actions == ["claim", "transfer", "unclaim"]


async def test_two_agents_claiming_at_once_one_wins_one_gets_409(
    desk: Desk, db_url: str, clients: Clients, relay: FakeRelay
) -> None:
    amy = await clients(desk)
    bob = await clients(app_of=amy)
    tokens = await asyncio.gather(sign_in(amy), sign_in(bob, "bob"))
    for round_ in range(5):
        case_id = open_case(db_url, f"race-{round_}")
        responses = await asyncio.gather(
            post(amy, f"cases/{case_id}/claim", tokens[0]),
            post(bob, f"cases/{case_id}/claim", tokens[1]),
        )
        assert sorted(r.status for r in responses) == [200, 409]
        winner = next(r for r in responses if r.status == 200)
        loser = next(r for r in responses if r.status == 409)
        holder = (await winner.json())["agent_id"]
        assert (await loser.json())["agent_id"] == holder
    assert len([c for c in relay.calls if c[0] == "joined"]) == 5


async def test_two_page_servers_on_one_postgresql_one_claim_wins(
    postgres_url: str, tracker_url: str, clients: Clients
) -> None:
    """Two separate applications (as two page server processes) over one database."""
    relays = [FakeRelay(), FakeRelay()]
    desks = [make_desk(postgres_url, tracker_url, relay) for relay in relays]
    desks[0].store.add_agent("amy", "小美", "agent", PASSWORD)
    desks[0].store.add_agent("bob", "小波", "agent", PASSWORD)
    amy = await clients(desks[0])
    bob = await clients(desks[1])
    tokens = await asyncio.gather(sign_in(amy), sign_in(bob, "bob"))
    for round_ in range(5):
        case_id = open_case(postgres_url, f"race-{round_}")
        responses = await asyncio.gather(
            post(amy, f"cases/{case_id}/claim", tokens[0]),
            post(bob, f"cases/{case_id}/claim", tokens[1]),
        )
        assert sorted(r.status for r in responses) == [200, 409]
    joined = sum(1 for relay in relays for call in relay.calls if call[0] == "joined")
    assert joined == 5


# ------------------------------------------------------------ Rasa unreachable


async def test_when_rasa_is_unreachable_nothing_is_changed(
    desk: Desk, db_url: str, clients: Clients, relay: FakeRelay
) -> None:
    case_id = open_case(db_url, "conv-1")
    client = await clients(desk)
    csrf = await sign_in(client)
    relay.down = True
    body = await error_of(await post(client, f"cases/{case_id}/claim", csrf), 502)
    assert body["error"].startswith("无法联系机器人服务器")
    assert desk.store.case(case_id)["status"] == "waiting"
    relay.down = False
    await post(client, f"cases/{case_id}/claim", csrf)
    relay.down = True
    await error_of(
        await post(client, f"cases/{case_id}/messages", csrf, {"text": "您好"}), 502
    )
    assert desk.store.case(case_id)["first_reply_at"] is None
    await error_of(
        await post(client, f"cases/{case_id}/resolve", csrf, {"note": "x"}), 502
    )
    case = desk.store.case(case_id)
    assert (
        case is not None and case["status"] == "active" and case["resolution"] is None
    )
    assert CaseStore(db_url).outcome("conv-1") is None
    actions = [line["action"] for line in desk.store.audit_log(case_id)]
    assert actions == ["claim", "unclaim", "claim"]
    assert desk.store.audit_log(case_id)[1]["detail"] == {"reason": "relay_failed"}


async def test_the_store_unreachable_is_a_503(
    tracker_url: str, clients: Clients
) -> None:
    desk = make_desk("postgresql://postgres@127.0.0.1:1/none", tracker_url)
    client = await clients(desk)
    body = await error_of(
        await client.post(
            f"{API}/login", json={"username": "amy", "password": PASSWORD}
        ),
        503,
    )
    assert "case store" in body["error"]
    client.session.cookie_jar.update_cookies({COOKIE: "some-token"})
    await error_of(await client.get(f"{API}/cases"), 503)


# ------------------------------------------------------------------ bad input


async def test_bad_input_is_a_4xx_json_error_never_a_500(
    desk: Desk, db_url: str, clients: Clients, relay: FakeRelay
) -> None:
    case_id = open_case(db_url, "conv-1")
    other = open_case(db_url, "conv-2")
    client = await clients(desk)
    csrf = await sign_in(client)
    await post(client, f"cases/{case_id}/claim", csrf)
    huge = "x" * (40 * 1024)  # over MAX_BODY_BYTES, under client_max_size
    raw_bodies = ["{", "[]", '"text"', "null", "\xff\xfe", "1e999999", huge]
    cases: List[Tuple[str, str, Any, int]] = []
    for path in (
        "login",
        f"cases/{case_id}/messages",
        f"cases/{case_id}/resolve",
        f"cases/{case_id}/transfer",
    ):
        for raw in raw_bodies:
            cases.append(
                (
                    "POST",
                    path,
                    raw.encode("utf-8", "surrogateescape")
                    if raw != "\xff\xfe"
                    else b"\xff\xfe",
                    0,
                )
            )
    cases += [
        ("POST", "login", {"username": 5, "password": "x"}, 400),
        ("POST", "login", {"username": "amy"}, 400),
        ("POST", "login", {"username": ["amy"], "password": PASSWORD}, 400),
        ("POST", "login", {"username": "amy" * 30, "password": PASSWORD}, 401),
        ("POST", "login", {"username": "amy", "password": "p" * 5000}, 401),
        (
            "POST",
            "login",
            {"username": "Amy'; DROP TABLE desk_agents;--", "password": "x"},
            401,
        ),
        ("POST", f"cases/{case_id}/messages", {}, 400),
        ("POST", f"cases/{case_id}/messages", {"text": ""}, 400),
        ("POST", f"cases/{case_id}/messages", {"text": " \n\t\u200b "}, 400),
        ("POST", f"cases/{case_id}/messages", {"text": 42}, 400),
        ("POST", f"cases/{case_id}/messages", {"text": ["a"]}, 400),
        ("POST", f"cases/{case_id}/messages", {"text": {"a": 1}}, 400),
        ("POST", f"cases/{case_id}/messages", {"text": "字" * 2001}, 400),
        ("POST", f"cases/{case_id}/resolve", {"note": 5}, 400),
        ("POST", f"cases/{case_id}/resolve", {"note": "字" * 2001}, 400),
        ("POST", f"cases/{case_id}/transfer", {}, 400),
        ("POST", f"cases/{case_id}/transfer", {"to": 3}, 400),
        ("POST", f"cases/{case_id}/transfer", {"to": "nobody"}, 400),
        ("POST", f"cases/{case_id}/transfer", {"to": "amy"}, 409),
        ("POST", f"cases/{case_id}/transfer", {"to": "x" * 500}, 400),
        ("POST", f"cases/{other}/messages", {"text": "hi"}, 409),
        ("POST", f"cases/{other}/resolve", {}, 409),
        ("POST", f"cases/{other}/unclaim", {}, 409),
        ("POST", "cases/NOPE123/claim", {}, 404),
        ("POST", "cases/NOPE123/messages", {"text": "hi"}, 404),
        ("POST", "cases/NOPE123/resolve", {}, 404),
        ("POST", "cases/NOPE123/unclaim", {}, 404),
        ("POST", "cases/NOPE123/transfer", {"to": "bob"}, 404),
        ("POST", "cases/..%2F..%2Fetc/claim", {}, 404),
        ("POST", "cases/%E5%A4%B4/claim", {}, 404),
        ("POST", "cases/" + "A" * 40 + "/claim", {}, 404),
        ("GET", "cases?status=closed", None, 400),
        ("GET", "cases?status=", None, 400),
        ("GET", "cases?status=waiting&status=active", None, 200),
        ("GET", "cases/NOPE123", None, 404),
        ("GET", "cases/NOPE123/stream", None, 404),
        ("GET", f"cases/{case_id}/stream?after=-1", None, 400),
        ("GET", f"cases/{case_id}/stream?after=abc", None, 400),
        ("GET", f"cases/{case_id}/stream?after=99999999999999999999999", None, 400),
        ("GET", "nothing-here", None, 404),
        ("DELETE", "cases", None, 405),
        ("PUT", f"cases/{case_id}/claim", {}, 405),
        ("GET", f"cases/{case_id}/claim", None, 404),
    ]
    for method, path, body, expected in cases:
        kwargs: Dict[str, Any] = {"headers": {"X-CSRF-Token": csrf}}
        if isinstance(body, bytes):
            kwargs["data"] = body
            kwargs["headers"]["Content-Type"] = JSON
        elif body is not None:
            kwargs["json"] = body
        response = await client.request(method, f"{API}/{path}", **kwargs)
        text = await response.text()
        assert response.status < 500, (method, path, response.status, text)
        if expected == 200:
            assert response.status == 200, (path, text)
            continue
        assert 400 <= response.status < 500, (method, path, response.status, text)
        assert response.content_type == JSON, (method, path, text)
        assert json.loads(text)["error"], (method, path, text)
        if expected:
            assert response.status == expected, (method, path, response.status, text)
    assert [call[0] for call in relay.calls] == ["joined"]
    assert (await client.get(f"{API}/me")).status == 200


async def test_a_huge_body_is_refused_before_it_is_read(
    desk: Desk, clients: Clients
) -> None:
    client = await clients(desk)
    response = await client.post(
        f"{API}/login",
        data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Content-Type": JSON},
    )
    await error_of(response, 413)


# ----------------------------------------------------------------- live stream


async def read_events(
    response: ClientResponse,
    until: Callable[[List[Tuple[str, Any, Optional[str]]]], bool],
) -> List[Tuple[str, Any, Optional[str]]]:
    """Server-sent events (name, data, id) until ``until`` holds (or 10 s pass)."""
    events: List[Tuple[str, Any, Optional[str]]] = []

    async def read() -> None:
        name, data, event_id = "", "", None
        while not until(events):
            line = (await response.content.readline()).decode("utf-8")
            if not line:
                raise AssertionError(f"the stream ended: {events}")
            line = line.rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line == "" and name:
                events.append((name, json.loads(data), event_id))
                name, data, event_id = "", "", None

    await asyncio.wait_for(read(), 10)
    return events


def transcript_texts(events: List[Tuple[str, Any, Optional[str]]]) -> List[str]:
    return [data["text"] for name, data, _ in events if name == "transcript"]


async def test_the_stream_sends_new_messages_and_status_changes(
    desk: Desk, db_url: str, tracker_url: str, clients: Clients
) -> None:
    case_id = open_case(db_url, "conv-live")
    rasa = tracker_store(tracker_url)
    await record(rasa, "conv-live", user("我要转人工"), bot("已为您转接人工客服"))
    client = await clients(desk)
    csrf = await sign_in(client)
    stream = await client.get(f"{API}/cases/{case_id}/stream")
    assert stream.status == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    events = await read_events(
        stream,
        lambda e: len(transcript_texts(e)) == 2 and any(n == "status" for n, _, _ in e),
    )
    assert transcript_texts(events) == ["我要转人工", "已为您转接人工客服"]
    status = [data for name, data, _ in events if name == "status"]
    assert status[0]["status"] == "waiting"
    last_id = [event_id for name, _, event_id in events if name == "transcript"][-1]
    # The user writes: it arrives live; the agent claims: a status event.
    await record(rasa, "conv-live", user("还要等多久？"))
    more = await read_events(stream, lambda e: bool(transcript_texts(e)))
    assert transcript_texts(more) == ["还要等多久？"]
    assert more[0][2] is not None and int(more[0][2]) > int(str(last_id))
    await post(client, f"cases/{case_id}/claim", csrf)
    changed = await read_events(stream, lambda e: any(n == "status" for n, _, _ in e))
    assert [d["status"] for n, d, _ in changed if n == "status"] == ["active"]
    await record(rasa, "conv-live", bot("您好，我是小美", agent=("amy", "小美")))
    agent = await read_events(stream, lambda e: bool(transcript_texts(e)))
    ((_, entry, _),) = [e for e in agent if e[0] == "transcript"]
    assert entry["from"] == "agent" and entry["agent_name"] == "小美"
    stream.close()
    # Resuming with Last-Event-ID sends only what came after it.
    resumed = await client.get(
        f"{API}/cases/{case_id}/stream", headers={"Last-Event-ID": str(last_id)}
    )
    events = await read_events(resumed, lambda e: len(transcript_texts(e)) == 2)
    assert transcript_texts(events) == ["还要等多久？", "您好，我是小美"]
    resumed.close()


async def test_the_stream_ends_when_the_session_ends(
    desk: Desk, db_url: str, clients: Clients, clock: Clock
) -> None:
    desk.session_check_s = 0.0
    case_id = open_case(db_url, "conv-live")
    client = await clients(desk)
    await sign_in(client)
    stream = await client.get(f"{API}/cases/{case_id}/stream")
    await read_events(stream, lambda e: any(n == "status" for n, _, _ in e))
    clock.advance(minutes=31)
    ended = await read_events(stream, lambda e: any(n == "end" for n, _, _ in e))
    assert ended[-1][1]["error"]
    assert await asyncio.wait_for(stream.content.read(), 10) == b""


# ------------------------------------------------------------ restart, start-up


async def test_a_restart_keeps_the_session_the_claim_and_the_audit(
    db_url: str, tracker_url: str, clients: Clients
) -> None:
    before = make_desk(db_url, tracker_url)
    before.store.add_agent("amy", "小美", "agent", PASSWORD)
    case_id = open_case(db_url, "conv-1")
    first = await clients(before)
    csrf = await sign_in(first)
    await post(first, f"cases/{case_id}/claim", csrf)
    cookie = first.session.cookie_jar.filter_cookies(first.make_url("/agent/api/me"))[
        COOKIE
    ].value
    await first.close()
    after = make_desk(db_url, tracker_url)
    second = await clients(after)
    second.session.cookie_jar.update_cookies({COOKIE: cookie})
    me = await second.get(f"{API}/me")
    assert me.status == 200 and (await me.json())["csrf_token"] == csrf
    sent = await post(second, f"cases/{case_id}/messages", csrf, {"text": "我回来了"})
    assert sent.status == 200
    actions = [line["action"] for line in after.store.audit_log()]
    assert actions == ["login", "claim", "message"]


def test_prepare_makes_the_demo_agents_and_prod_refuses_them(tmp_path: Path) -> None:
    store = DeskStore(f"sqlite:///{tmp_path / 'd.db'}", hasher=FAST_HASHER)
    assert prepare(store, "prod") is None
    assert prepare(store, "demo") is None
    assert store.verify("agent1", DEMO_PASSWORD) is not None
    refusal = prepare(store, "prod")
    assert refusal is not None and "agent1, agent2" in refusal
    assert "make agent-add" in refusal and "\n" not in refusal
    store.add_agent("agent1", "小安", "supervisor", "a-real-password")
    store.add_agent("agent2", "小宁", "agent", "another-real-password")
    assert prepare(store, "prod") is None


def test_the_page_server_refuses_to_start_in_prod_with_demo_passwords(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    DeskStore(url, hasher=FAST_HASHER).ensure_demo_agents()
    started = subprocess.run(
        [sys.executable, "-m", "web.server", "--port", "1"],
        cwd=ROOT,
        env={
            "PYTHONPATH": str(ROOT),
            "BOT_PROFILE": "prod",
            "ACCOUNT_DB_URL": url,
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 2, started.stderr
    lines = started.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "agent1, agent2" in lines[0]
        and "make agent-add" in lines[0]
    )


def test_the_page_server_does_not_import_rasa() -> None:
    code = (
        "import sys, web.server, web.agent_api, desk.store, desk.transcript, desk.relay\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'rasa', 'rasa_sdk', 'tensorflow', 'sanic', 'spacy'})\n"
        "print(heavy)"
    )
    found = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"


async def test_agent_opens_the_console_page(
    tmp_path: Path, desk: Desk, clients: Clients
) -> None:
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "index.html").write_text("<!doctype html><title>desk</title>")
    client = await clients(desk, settings=PageSettings(static_dir=tmp_path))
    redirect = await client.get("/agent", allow_redirects=False)
    assert redirect.status == 302 and redirect.headers["Location"] == "/agent/"
    page = await client.get("/agent/")
    assert page.status == 200 and "desk" in await page.text()
    assert "Content-Security-Policy" in page.headers


async def test_the_relay_is_closed_with_the_app(
    desk: Desk, relay: FakeRelay, clients: Clients
) -> None:
    client = await clients(desk)
    await client.close()
    assert relay.closed


def test_the_desk_is_built_from_the_page_server_settings(tmp_path: Path) -> None:
    from settings import PageServerSettings, load

    settings = load(
        PageServerSettings,
        {
            "ACCOUNT_DB_URL": f"sqlite:///{tmp_path / 'a.db'}",
            "TRACKER_DB_PATH": str(tmp_path / "t.db"),
            "RASA_PUBLIC_URL": "http://127.0.0.1:5005",
            "RASA_INTERNAL_URL": "http://rasa:5005/",
            "RASA_AUTH_TOKEN": "t" * 32,
            "DESK_SESSION_IDLE_MINUTES": "10",
            "DESK_COOKIE_SECURE": "1",
        },
    )
    desk = Desk.from_settings(settings)
    assert desk.store.url == f"sqlite:///{tmp_path / 'a.db'}"
    assert desk.transcripts.url == f"sqlite:///{tmp_path / 't.db'}"
    assert desk.store.idle.total_seconds() == 600 and desk.cookie_secure
    relay = desk.relay
    assert isinstance(relay, agent_api.RasaRelay)
    assert relay.base_url == "http://rasa:5005" and relay.token == "t" * 32


async def test_supervisor_pages_are_403_for_an_agent(
    desk: Desk, clients: Clients
) -> None:
    """What issue 14's insights and review use: supervisor_session."""

    async def insights(request: web.Request) -> web.StreamResponse:
        session = await agent_api.supervisor_session(request)
        return web.json_response({"hello": session.agent.username})

    app = web.Application(middlewares=[agent_api.api_errors])
    agent_api.setup(app, desk)
    app.router.add_get(f"{API}/insights-probe", insights)
    amy = await clients(settings=None, app=app)
    sue = await clients(app_of=amy)
    await error_of(await amy.get(f"{API}/insights-probe"), 401)
    await sign_in(amy)
    await error_of(await amy.get(f"{API}/insights-probe"), 403)
    await sign_in(sue, "sue")
    assert await (await sue.get(f"{API}/insights-probe")).json() == {"hello": "sue"}
