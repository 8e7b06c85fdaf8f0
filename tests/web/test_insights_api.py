"""The supervisors' insights and review API and pages (web/insights_api.py).

A real page server application (aiohttp's TestClient) with the desk's real
sign-in over SQLite stores and over a real PostgreSQL: Rasa's ``events`` table
and the case store, filled as Rasa and the actions fill them. Rasa's
/model/parse is a small fake server.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher
from limits.storage import MemoryStorage

from actions.services.cases import CaseStore
from desk.relay import RasaRelay
from desk.store import DeskStore
from desk.transcript import TranscriptReader
from devtools.privacy_cases import ID_CARD, MOBILE
from devtools.servers import Postgres
from insights import export, review
from insights.stores import Stores, events_table
from web import insights_api, server
from web.agent_api import COOKIE, Desk, LoginLimit
from web.insights_api import Insights
from web.server import PageSettings, create_app

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a-long-password-1"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
# An 11-digit mainland mobile number, an 18-character ID card number.
PHONE_PATTERN = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID_PATTERN = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
UNSURE = "借呗多大年龄可以用"
LEAKY = f"借呗不见了 我手机{MOBILE} 身份证{ID_CARD}"


def leaks(text: str) -> List[str]:
    return PHONE_PATTERN.findall(text) + ID_PATTERN.findall(text)


class NoRelay:
    """The desk's relay; these tests never reach it."""

    async def joined(self, *args: Any) -> None:
        raise AssertionError("no relay call expected")

    async def message(self, *args: Any) -> None:
        raise AssertionError("no relay call expected")

    async def resolved(self, *args: Any) -> None:
        raise AssertionError("no relay call expected")

    async def close(self) -> None:
        return None


class Tracker:
    """Rasa's ``events`` table, written as Rasa's SQLTrackerStore writes it."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, future=True)
        events_table.metadata.create_all(self.engine)

    def add(self, sender: str, event: Dict[str, Any]) -> None:
        row = {
            "sender_id": sender,
            "type_name": event["event"],
            "timestamp": event.get("timestamp", time.time()),
            "intent_name": (event.get("parse_data") or {})
            .get("intent", {})
            .get("name"),
            "action_name": event.get("name"),
            "data": json.dumps(event, ensure_ascii=False),
        }
        with self.engine.begin() as connection:
            connection.execute(events_table.insert(), row)

    def user(
        self,
        sender: str,
        text: str,
        intent: str,
        confidence: float,
        ranking: Optional[List[Dict[str, Any]]] = None,
    ) -> None:
        self.add(
            sender,
            {
                "event": "user",
                "text": text,
                "timestamp": time.time(),
                "input_channel": "rest",
                "parse_data": {
                    "intent": {"name": intent, "confidence": confidence},
                    "intent_ranking": ranking
                    or [{"name": intent, "confidence": confidence}],
                    "text": text,
                },
            },
        )

    def action(self, sender: str, name: str) -> None:
        self.add(sender, {"event": "action", "name": name, "timestamp": time.time()})


class FakeRasa:
    """Rasa's /model/parse: the labels it gives, or down."""

    def __init__(self) -> None:
        self.labels: Dict[str, str] = {}
        self.down = False
        self.delay_s = 0.0
        self.tokens: List[Optional[str]] = []

    async def parse(self, request: web.Request) -> web.StreamResponse:
        self.tokens.append(request.query.get("token"))
        await asyncio.sleep(self.delay_s)
        if self.down:
            return web.json_response({"message": "down"}, status=503)
        text = (await request.json())["text"]
        label = self.labels.get(text, "out_of_scope")
        ranking = [{"name": label, "confidence": 0.95}]
        return web.json_response(
            {"text": text, "intent": ranking[0], "intent_ranking": ranking}
        )


BOTH_STORES = pytest.mark.parametrize("urls", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Dict[str, str]]:
    """The tracker store and the case store: SQLite files (embedded), or two
    databases of a real PostgreSQL (production) for the tests marked BOTH_STORES."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield {
            "cases": f"sqlite:///{tmp_path / 'cases.db'}",
            "tracker": f"sqlite:///{tmp_path / 'tracker.db'}",
        }
        return
    postgres: Postgres = request.getfixturevalue("postgres")
    names = [postgres.create_database(), postgres.create_database()]
    try:
        yield {"cases": postgres.url(names[0]), "tracker": postgres.url(names[1])}
    finally:
        for name in names:
            postgres.drop_database(name)


@pytest.fixture
def tracker(urls: Dict[str, str]) -> Tracker:
    return Tracker(urls["tracker"])


@pytest.fixture
def desk(urls: Dict[str, str]) -> Desk:
    store = DeskStore(urls["cases"], hasher=FAST_HASHER)
    store.ensure_schema()
    store.add_agent("sue", "小苏", "supervisor", PASSWORD)
    store.add_agent("amy", "小美", "agent", PASSWORD)
    return Desk(
        store=store,
        transcripts=TranscriptReader(urls["tracker"]),
        relay=NoRelay(),
        login_limit=LoginLimit("50/minute", "50/minute", MemoryStorage()),
    )


@pytest.fixture
async def rasa() -> AsyncIterator[tuple[FakeRasa, str]]:
    fake = FakeRasa()
    app = web.Application()
    app.router.add_post("/model/parse", fake.parse)
    test_server = TestServer(app)
    await test_server.start_server()
    yield fake, str(test_server.make_url("")).rstrip("/")
    await test_server.close()


@pytest.fixture
async def client(
    urls: Dict[str, str], desk: Desk, rasa: tuple[FakeRasa, str]
) -> AsyncIterator[TestClient]:
    insights = Insights(
        stores=Stores.from_urls(urls["tracker"], urls["cases"]),
        rasa=RasaRelay(rasa[1], token="t" * 32, timeout_s=2.0),
        review_below=0.82,
    )
    test_client = TestClient(TestServer(create_app(PageSettings(), desk, insights)))
    await test_client.start_server()
    yield test_client
    await test_client.close()


async def sign_in(client: TestClient, username: str) -> str:
    """Sign in through the desk's API; the session's CSRF token."""
    response = await client.post(
        "/agent/api/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status == 200, await response.text()
    return str((await response.json())["csrf_token"])


def sign_out(client: TestClient) -> None:
    client.session.cookie_jar.clear()


READS = [
    "/agent/api/stats",
    "/agent/api/stats?from=2024-01-01&to=2024-01-31",
    "/agent/api/stats.csv?table=intents",
    "/agent/api/review",
    "/agent/api/review/summary",
]


async def test_without_a_session_every_call_is_401(client: TestClient) -> None:
    for path in READS:
        response = await client.get(path)
        assert response.status == 401, path
        assert "error" in await response.json()
    response = await client.post("/agent/api/review/abc", json={"label": "greet"})
    assert response.status == 401


async def test_an_agent_is_refused_403_and_a_supervisor_served(
    client: TestClient,
) -> None:
    csrf = await sign_in(client, "amy")
    for path in READS:
        response = await client.get(path)
        assert response.status == 403, path
        assert "主管" in (await response.json())["error"]
    response = await client.post(
        "/agent/api/review/abc", json={"label": "greet"}, headers={"X-CSRF-Token": csrf}
    )
    assert response.status == 403
    sign_out(client)
    await sign_in(client, "sue")
    for path in READS:
        response = await client.get(path)
        assert response.status == 200, (path, await response.text())


async def test_a_label_needs_the_csrf_token(
    client: TestClient, tracker: Tracker
) -> None:
    tracker.user("u1", UNSURE, "nlu_fallback", 0.82)
    await sign_in(client, "sue")
    [item] = (await (await client.get("/agent/api/review")).json())["items"]
    for headers in ({}, {"X-CSRF-Token": "wrong"}):
        response = await client.post(
            f"/agent/api/review/{item['id']}",
            json={"label": "jiebei_cannot_open"},
            headers=headers,
        )
        assert response.status == 403
    assert (await (await client.get("/agent/api/review/summary")).json())[
        "reviewed"
    ] == 0


@pytest.mark.parametrize(
    "query",
    [
        "from=2024-13-01&to=2024-12-31",
        "from=yesterday",
        "to=2024-02-30",
        "from=2024-05-02&to=2024-05-01",
        "from=2020-01-01&to=2024-12-31",
        "channel=" + "x" * 65,
    ],
)
async def test_bad_dates_and_ranges_are_400(client: TestClient, query: str) -> None:
    await sign_in(client, "sue")
    for path in ("/agent/api/stats", "/agent/api/stats.csv?table=intents&"):
        separator = "" if path.endswith("&") else "?"
        response = await client.get(path + separator + query)
        assert response.status == 400, (path, query)
        assert response.content_type == "application/json"
        assert (await response.json())["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/agent/api/stats.csv",
        "/agent/api/stats.csv?table=",
        "/agent/api/stats.csv?table=passwords",
        "/agent/api/review?limit=0",
        "/agent/api/review?limit=abc",
        "/agent/api/review?limit=100000",
        "/agent/api/review?limit=-1",
        "/agent/api/review?reviewed=maybe",
        "/agent/api/review?days=0",
        "/agent/api/review?days=401",
        "/agent/api/review?days=1.5",
    ],
)
async def test_bad_parameters_are_400(client: TestClient, path: str) -> None:
    await sign_in(client, "sue")
    response = await client.get(path)
    assert response.status == 400
    assert (await response.json())["error"]


async def test_bad_labels_and_items(client: TestClient, tracker: Tracker) -> None:
    tracker.user("u1", UNSURE, "nlu_fallback", 0.82)
    csrf = await sign_in(client, "sue")
    headers = {"X-CSRF-Token": csrf}
    [item] = (await (await client.get("/agent/api/review")).json())["items"]
    url = f"/agent/api/review/{item['id']}"
    for body in ({"label": "no_such_intent"}, {"label": 3}, {}, {"label": ""}):
        response = await client.post(url, json=body, headers=headers)
        assert response.status == 400, body
        assert (await response.json())["error"]
    response = await client.post(url, data=b"{not json", headers=headers)
    assert response.status == 400
    response = await client.post(url, json=["greet"], headers=headers)
    assert response.status == 400
    for missing in ("0" * 32, "not-an-id", "x" * 200):
        response = await client.post(
            f"/agent/api/review/{missing}", json={"label": "greet"}, headers=headers
        )
        assert response.status == 404, missing
    assert (await (await client.get("/agent/api/review/summary")).json())[
        "reviewed"
    ] == 0


@BOTH_STORES
async def test_stats_figures(
    client: TestClient, tracker: Tracker, urls: Dict[str, str]
) -> None:
    tracker.user("a", "借呗不见了", "jiebei_entry_missing", 0.97)
    tracker.user("b", "借呗被冻结了", "jiebei_closed", 0.9)
    tracker.user("b", "转人工", "request_human", 0.99)
    tracker.user("c", "嗯嗯", "nlu_fallback", 0.82)
    tracker.action("c", "action_clarify_intent")
    cases = CaseStore(urls["cases"])
    cases.record_outcome("a", "resolved_by_bot", ["account_frozen"])
    cases.record_rating("a", 4)
    cases.record_outcome("b", "handed_off", ["account_frozen"])
    cases.open_case("b", {"problem": "借呗被冻结了"}, channel="rest")
    await sign_in(client, "sue")
    today = datetime.now(timezone.utc).date()
    response = await client.get(
        f"/agent/api/stats?from={today - timedelta(days=1)}&to={today}"
    )
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert body["counts"]["conversations"] == 3
    assert body["counts"]["user_messages"] == 4
    assert body["self_service_rate"] == 0.5
    assert body["handoff_rate"] == 0.5
    assert body["abandon_rate"] == 0.0
    assert body["csat_average"] == 4.0
    assert body["csat_distribution"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}
    assert body["fallback_rate"] == 0.25
    assert body["did_you_mean_rate"] == 0.25
    assert body["causes"] == [{"cause": "account_frozen", "count": 2}]
    assert {i["intent"]: i["count"] for i in body["intents"]}["request_human"] == 1
    assert sum(body["handoff_reasons"].values()) == 1
    assert len(body["per_day"]) == 2
    # the channel filter: nothing was written on the web chat
    other = await (await client.get("/agent/api/stats?channel=socketio")).json()
    assert other["counts"]["conversations"] == 0


@BOTH_STORES
async def test_csv_tables_for_excel(client: TestClient, tracker: Tracker) -> None:
    tracker.user("a", "借呗不见了", "jiebei_entry_missing", 0.97)
    await sign_in(client, "sue")
    for table in ("per_day", "causes", "intents", "csat", "handoff_reasons"):
        response = await client.get(
            f"/agent/api/stats.csv?table={table}&from=2024-05-01&to=2024-05-03"
        )
        assert response.status == 200, table
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith("attachment;")
        assert f"jiebei-{table}-2024-05-01_2024-05-03.csv" in disposition
        raw = await response.read()
        assert raw.startswith(b"\xef\xbb\xbf"), table  # UTF-8 BOM for Excel
        lines = raw.decode("utf-8-sig").splitlines()
        assert lines[0].split(",")[0] in ("date", "cause", "intent", "rating", "reason")
    rows = (
        (
            await (
                await client.get(
                    "/agent/api/stats.csv?table=per_day&from=2024-05-01&to=2024-05-03"
                )
            ).read()
        )
        .decode("utf-8-sig")
        .splitlines()
    )
    assert [row.split(",")[0] for row in rows[1:]] == [
        "2024-05-01",
        "2024-05-02",
        "2024-05-03",
    ]


@BOTH_STORES
async def test_personal_data_that_slipped_into_a_store_never_leaves_unmasked(
    client: TestClient, tracker: Tracker, urls: Dict[str, str], tmp_path: Path
) -> None:
    # The input gate masks what users type before Rasa stores it; here a
    # message, an intent name and a cause slipped through unmasked.
    tracker.user("leaky", LEAKY, "nlu_fallback", 0.82)
    tracker.user("leaky", "随便", f"intent_{MOBILE}", 0.3)
    CaseStore(urls["cases"]).record_outcome("leaky", "abandoned", [f"id_{ID_CARD}"])
    csrf = await sign_in(client, "sue")

    stats_text = await (await client.get("/agent/api/stats")).text()
    assert leaks(stats_text) == []
    for table in ("per_day", "causes", "intents", "csat", "handoff_reasons"):
        csv_text = (
            await (await client.get(f"/agent/api/stats.csv?table={table}")).read()
        ).decode("utf-8-sig")
        assert leaks(csv_text) == [], table
    assert "intent_138****5678" in (
        await (await client.get("/agent/api/stats.csv?table=intents")).read()
    ).decode("utf-8-sig")

    queue_text = await (await client.get("/agent/api/review")).text()
    assert leaks(queue_text) == []
    items = json.loads(queue_text)["items"]
    [item] = [i for i in items if "借呗不见了" in i["text"]]
    assert "138****5678" in item["text"]
    response = await client.post(
        f"/agent/api/review/{item['id']}",
        json={"label": "jiebei_entry_missing"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 200
    assert leaks(await response.text()) == []

    # make review-export's function, on a copy of the project's data
    root = project_copy(tmp_path / "project")
    report = export.export_reviewed(
        Stores.from_urls(urls["tracker"], urls["cases"]), root=root
    )
    assert report.total == 1
    exported = (root / "data" / "nlu" / "reviewed.yml").read_text(encoding="utf-8")
    assert "138****5678" in exported
    assert leaks(exported) == []


@BOTH_STORES
async def test_a_label_is_stored_with_who_and_when(
    client: TestClient, tracker: Tracker
) -> None:
    tracker.user("u1", UNSURE, "nlu_fallback", 0.82, ranking=[
        {"name": "nlu_fallback", "confidence": 0.82},
        {"name": "jiebei_how_to_borrow", "confidence": 0.45},
    ])  # fmt: skip
    tracker.user("u2", UNSURE + "？", "jiebei_how_to_borrow", 0.5)
    tracker.user("u3", "借呗咋没了", "jiebei_entry_missing", 0.99)  # sure: not queued
    csrf = await sign_in(client, "sue")
    queue = await (await client.get("/agent/api/review")).json()
    assert review.NOISE in queue["labels"] and "jiebei_cannot_open" in queue["labels"]
    assert queue["noise_label"] == review.NOISE
    [item] = queue["items"]  # the two spellings are one item
    assert item["text"].startswith(UNSURE)
    assert item["count"] == 2
    assert set(item["reasons"]) >= {"fallback", "low_confidence"}
    assert item["predicted"] == "jiebei_how_to_borrow"
    assert item["label"] is None and item["reviewer"] is None

    before = datetime.now(timezone.utc)
    response = await client.post(
        f"/agent/api/review/{item['id']}",
        json={"label": "jiebei_cannot_open"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 200
    stored = (await response.json())["item"]
    assert stored["label"] == "jiebei_cannot_open"
    assert stored["reviewer"] == "sue" and stored["reviewer_name"] == "小苏"
    when = datetime.fromisoformat(stored["reviewed_at"])
    assert before - timedelta(seconds=1) <= when <= datetime.now(timezone.utc)

    shown = (await (await client.get("/agent/api/review")).json())["items"]
    assert [(i["id"], i["label"], i["reviewer"]) for i in shown] == [
        (item["id"], "jiebei_cannot_open", "sue")
    ]
    assert (await (await client.get("/agent/api/review?reviewed=0")).json())[
        "items"
    ] == []
    # relabelled: the latest label counts
    response = await client.post(
        f"/agent/api/review/{item['id']}",
        json={"label": review.NOISE},
        headers={"X-CSRF-Token": csrf},
    )
    assert (await response.json())["item"]["label"] == review.NOISE


async def test_the_queue_covers_the_days_asked(
    client: TestClient, tracker: Tracker
) -> None:
    tracker.user("u1", UNSURE, "nlu_fallback", 0.82)
    old = time.time() - 10 * 24 * 3600
    tracker.add(
        "u0",
        {
            "event": "user",
            "text": "十天前的一句",
            "timestamp": old,
            "parse_data": {"intent": {"name": "nlu_fallback", "confidence": 0.82}},
        },
    )
    await sign_in(client, "sue")

    async def texts(query: str) -> List[str]:
        body = await (await client.get(f"/agent/api/review{query}")).json()
        return sorted(item["text"] for item in body["items"])

    assert await texts("") == sorted([UNSURE, "十天前的一句"])  # 30 days
    assert await texts("?days=5") == [UNSURE]


@BOTH_STORES
async def test_summary_before_and_after(
    client: TestClient, tracker: Tracker, rasa: tuple[FakeRasa, str]
) -> None:
    fake, _ = rasa
    tracker.user("u1", UNSURE, "jiebei_how_to_borrow", 0.45)
    tracker.user("u2", "借呗那个东西还能用不", "jiebei_cannot_borrow", 0.5)
    tracker.user("u3", "啊啊啊", "out_of_scope", 0.3)
    csrf = await sign_in(client, "sue")
    items = {
        i["text"]: i["id"]
        for i in (await (await client.get("/agent/api/review")).json())["items"]
    }
    for text, label in (
        (UNSURE, "jiebei_cannot_open"),
        ("借呗那个东西还能用不", "jiebei_cannot_borrow"),
        ("啊啊啊", review.NOISE),
    ):
        response = await client.post(
            f"/agent/api/review/{items[text]}",
            json={"label": label},
            headers={"X-CSRF-Token": csrf},
        )
        assert response.status == 200
    fake.labels = {UNSURE: "jiebei_cannot_open", "借呗那个东西还能用不": "greet"}
    summary = await (await client.get("/agent/api/review/summary")).json()
    assert summary["reviewed"] == 3 and summary["scored"] == 2  # noise not scored
    assert summary["before"] == {"correct": 1, "accuracy": 0.5, "total": 2}
    assert summary["after"] == {"correct": 1, "accuracy": 0.5, "total": 2}
    assert set(fake.tokens) == {"t" * 32}  # the API token went along

    for trouble in ("down", "slow"):
        fake.down, fake.delay_s = trouble == "down", 5.0 if trouble == "slow" else 0
        # slow: Rasa would answer after 5 s, the relay gives up after 2 s
        response = await client.get("/agent/api/review/summary")
        assert response.status == 200
        summary = await response.json()
        assert summary["before"]["accuracy"] == 0.5
        assert summary["after"]["accuracy"] is None and summary["after"]["error"]


async def test_summary_when_rasa_is_not_there(
    urls: Dict[str, str], desk: Desk, tracker: Tracker
) -> None:
    tracker.user("u1", UNSURE, "jiebei_how_to_borrow", 0.45)
    insights = Insights(
        stores=Stores.from_urls(urls["tracker"], urls["cases"]),
        rasa=RasaRelay("http://127.0.0.1:9", token=None, timeout_s=1.0),
    )
    test_client = TestClient(TestServer(create_app(PageSettings(), desk, insights)))
    await test_client.start_server()
    try:
        csrf = await sign_in(test_client, "sue")
        [item] = (await (await test_client.get("/agent/api/review")).json())["items"]
        await test_client.post(
            f"/agent/api/review/{item['id']}",
            json={"label": "jiebei_cannot_open"},
            headers={"X-CSRF-Token": csrf},
        )
        summary = await (await test_client.get("/agent/api/review/summary")).json()
        assert summary["before"] == {"correct": 0, "accuracy": 0.0, "total": 1}
        assert summary["after"]["error"]
    finally:
        await test_client.close()


async def test_the_pages_under_the_strict_headers(client: TestClient) -> None:
    for path, title in (("/agent/insights", "数据洞察"), ("/agent/review", "待标注")):
        response = await client.get(path)  # no session: the script redirects
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
        assert title in await response.text()
    for path in (
        "/agent/insights.js",
        "/agent/review.js",
        "/agent/staff.js",
        "/agent/insights.css",
    ):
        assert (await client.get(path)).status == 200, path


async def test_a_cookie_of_no_session_is_401(client: TestClient) -> None:
    client.session.cookie_jar.update_cookies({COOKIE: "forged"})
    assert (await client.get("/agent/api/stats")).status == 401


def project_copy(root: Path) -> Path:
    """What export_reviewed reads of the project, copied (never the real data/)."""
    for part in (
        "domain",
        "data/nlu",
        "tests/nlu_dev",
        "tests/nlu_test",
        "tests/stories",
    ):
        shutil.copytree(ROOT / part, root / part)
    return root


# --- the pages' files ---------------------------------------------------------

AGENT = ROOT / "web" / "static" / "agent"
PAGES = [AGENT / "insights.html", AGENT / "review.html"]
SCRIPTS = [AGENT / "insights.js", AGENT / "review.js", AGENT / "staff.js"]


@pytest.mark.parametrize(
    "path", [*PAGES, *SCRIPTS, AGENT / "insights.css"], ids=lambda p: p.name
)
def test_page_files_load_nothing_from_elsewhere(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I)
    assert "@import" not in text and "@font-face" not in text


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_have_no_inline_script_style_or_handler(path: Path) -> None:
    from tests.web.test_server import _Tags

    parser = _Tags()
    parser.feed(path.read_text(encoding="utf-8"))
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts and all(attrs.get("src") for attrs in scripts)
    assert parser.script_text == ""
    assert not [tag for tag, _ in parser.tags if tag == "style"]
    for tag, attrs in parser.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], tag


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_never_parse_text_as_html(path: Path) -> None:
    script = path.read_text(encoding="utf-8")
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ):
        assert sink not in script


def test_insights_page_loads_the_vendored_charts() -> None:
    page = (AGENT / "insights.html").read_text(encoding="utf-8")
    assert f'src="/{server.VENDORED_CHARTS.as_posix()}"' in page


# --- ECharts, vendored like the socket.io client --------------------------------


def test_echarts_is_pinned_from_the_npm_registry() -> None:
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    version = package["dependencies"]["echarts"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "an exact pin"
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    entry = lock["packages"]["node_modules/echarts"]
    assert entry["version"] == version
    assert entry["resolved"].startswith("https://registry.npmjs.org/echarts/")
    assert entry["integrity"].startswith("sha512-")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert (
        "cp node_modules/echarts/dist/echarts.min.js $@" in makefile
        and f"WEB_VENDOR_CHARTS := web/static/{server.VENDORED_CHARTS.as_posix()}"
        in makefile
    )
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert (
        "/web/node_modules/echarts/dist/echarts.min.js "
        f"web/static/{server.VENDORED_CHARTS.as_posix()}" in dockerfile
    )


def test_the_page_server_refuses_to_start_without_the_charts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    urls: Dict[str, str],
) -> None:
    static = tmp_path / "static"
    (static / "vendor").mkdir(parents=True)
    (static / server.VENDORED_CLIENT).write_text("/* client */", encoding="utf-8")
    monkeypatch.setattr(
        PageSettings,
        "from_env",
        classmethod(lambda cls, environ=None: PageSettings(static_dir=static)),
    )
    monkeypatch.setenv("ACCOUNT_DB_URL", urls["cases"])
    from settings.processes import clear_settings

    clear_settings()
    try:
        assert server.main(["--port", "0"]) == 2
    finally:
        clear_settings()
    assert "web/static/vendor/echarts.min.js missing: run `make web`" in (
        capsys.readouterr().err
    )


def test_insights_are_mounted_on_the_desk_only() -> None:
    app = create_app(PageSettings())
    paths = {route.resource.canonical for route in app.router.routes()}  # type: ignore[union-attr]
    assert "/agent/api/stats" not in paths
    assert insights_api.PAGES.keys() - paths == insights_api.PAGES.keys()
