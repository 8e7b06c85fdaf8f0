"""The bot's side of a live handoff against the real servers (`make e2e`).

A user asks for a person (with the complaint in the same message), hears the
case id and the place in the queue, writes while waiting; an agent claims the
case (its status row, as the desk's claim writes it) and the desk's relay
(desk/relay.py) announces the agent, sends the agent's words and hands the
conversation back, over Rasa's HTTP API. The user is on socket.io (python's
client, and the chat page in headless Chromium) or REST. Two production-profile
instances sharing Redis: the user's socket on one, the relay through the
other; outside the desk's service hours.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterator, List
from zoneinfo import ZoneInfo

import pytest
import redis as redis_client
import socketio  # type: ignore[import-untyped]
from playwright.sync_api import Browser, sync_playwright

from actions.services.cases import CaseStore, status_table
from desk.hours import ServiceHours
from desk.relay import RasaRelay
from desk.waiting import QUEUED, QUEUED_WITH_WAIT, waiting_news
from devtools.harness import (
    Bot,
    prod_env,
    running_bot,
    seed_accounts,
    start_actions,
    start_rasa,
    stop,
)
from devtools.project import load_domain
from devtools.servers import Postgres, Redis, free_port
from tests.e2e.test_web_chat import (
    CHROMIUM,
    INJECTION,
    OUTPUT,
    PHONE,
    REPLY_TIMEOUT_MS,
    Watch,
    bubbles,
    page_server,
    send,
    wait_ready,
)

pytestmark = pytest.mark.e2e

REPLY_TIMEOUT_S = REPLY_TIMEOUT_MS / 1000
PAGE_PORT = free_port()
AGENT_ID, AGENT_NAME = "agent1", "小安"


def response(name: str, **values: Any) -> str:
    """A domain response's text, filled in as Rasa fills it."""
    return str(load_domain()["responses"][name][0]["text"]).format(**values)


def opened_text(store: CaseStore, case_id: str) -> str:
    """What the user hears when the case opens (desk/waiting.py decides)."""
    news = waiting_news(
        ServiceHours.parse("always"),
        datetime.now(timezone.utc),
        store.queue_position(case_id),
        store.typical_wait_s(),
    )
    name = {QUEUED: "utter_handoff", QUEUED_WITH_WAIT: "utter_handoff_with_wait"}
    return response(name[news.kind], case_id=case_id, **news.values)


def closed_hours_now() -> str:
    """Service hours that exclude the present moment (in Asia/Shanghai)."""
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    start, end = now + timedelta(hours=2), now + timedelta(hours=3)
    return f"{start:%H}:00-{end:%H}:00"


def claim(store: CaseStore, conversation_id: str) -> str:
    """What the desk's claim writes: the open case becomes the agent's."""
    case = store.open_case_of(conversation_id)
    assert case is not None and case["status"] == "waiting", case
    now = datetime.now(timezone.utc)
    with store._engine.begin() as connection:
        connection.execute(
            status_table.update()
            .where(status_table.c.case_id == case["case_id"])
            .values(status="active", agent_id=AGENT_ID, claimed_at=now, updated_at=now)
        )
    return str(case["case_id"])


def mark_resolved(store: CaseStore, case_id: str) -> None:
    now = datetime.now(timezone.utc)
    with store._engine.begin() as connection:
        connection.execute(
            status_table.update()
            .where(status_table.c.case_id == case_id)
            .values(status="resolved", resolved_at=now, updated_at=now)
        )


def relay_run(relay_call: Callable[[RasaRelay], Any], url: str, token: str) -> None:
    """One relay call from synchronous test code, with its own connections."""

    async def run() -> None:
        relay = RasaRelay(url, token or None)
        try:
            await relay_call(relay)
        finally:
            await relay.close()

    # Its own thread: Playwright's sync API keeps an event loop in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(run())).result()


class ChatUser:
    """The chat page's side of socket.io (python-socketio's client)."""

    def __init__(self, url: str, session_id: str) -> None:
        self.url = url
        self.session_id = session_id
        self.received: List[Dict[str, Any]] = []
        self._read = 0
        self.sio = socketio.AsyncClient(reconnection=False)
        self._confirmed = asyncio.Event()
        self.sio.on("bot_uttered", self.received.append)
        self.sio.on("session_confirm", lambda _: self._confirmed.set())

    async def __aenter__(self) -> ChatUser:
        # Polling: python-engineio's WebSocket transport needs a newer aiohttp.
        await self.sio.connect(self.url, transports=["polling"])
        await self.sio.emit("session_request", {"session_id": self.session_id})
        await asyncio.wait_for(self._confirmed.wait(), REPLY_TIMEOUT_S)
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.sio.disconnect()

    async def say(self, text: str) -> None:
        await self.sio.emit(
            "user_uttered", {"message": text, "session_id": self.session_id}
        )

    async def next(self, count: int = 1) -> List[Dict[str, Any]]:
        """The next ``count`` messages after those already read."""
        start = self._read
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while len(self.received) < start + count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{count} message(s) not received; got {self.received[start:]}"
                )
            await asyncio.sleep(0.05)
        self._read = start + count
        return self.received[start : start + count]


def bot_events(tracker: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [e for e in tracker["events"] if e.get("event") == "bot"]


def events_after_text(tracker: Dict[str, Any], text: str) -> List[Dict[str, Any]]:
    events = tracker["events"]
    said = [i for i, e in enumerate(events) if e.get("text") == text]
    assert said, f"{text!r} not in the tracker"
    return events[said[-1] + 1 :]


# --- the embedded profile ---------------------------------------------------------


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    workdir = tmp_path_factory.mktemp("handoff_live")
    with running_bot(
        workdir,
        {
            "BOT_PROFILE": "demo",
            "ACCOUNT_IDENTITY": "sender",
            "WEB_ALLOWED_ORIGINS": f"http://127.0.0.1:{PAGE_PORT}",
            "DESK_SERVICE_HOURS": "always",
        },
    ) as running:
        yield running


@pytest.fixture(scope="module")
def store(bot: Bot) -> CaseStore:
    return CaseStore(bot.env["ACCOUNT_DB_URL"])


def test_a_request_with_a_complaint_opens_a_case_and_says_the_place(
    bot: Bot, store: CaseStore
) -> None:
    bot.say("visitor_handoff_first", "转人工")  # one case ahead in the queue
    sender, asked = "visitor_handoff_rest", "借呗不见了，我要转人工"
    [reply] = bot.say(sender, asked)
    case = store.open_case_of(sender)
    assert case is not None and case["channel"] == "rest"
    assert reply["text"] == response(
        "utter_handoff", case_id=case["case_id"], queue_position=2
    )
    summary = store.case(case["case_id"])
    assert summary["problem"] == asked and summary["user_words"] == [asked]
    tracker = bot.tracker(sender)
    assert tracker["paused"] is True
    user = [e for e in tracker["events"] if e.get("event") == "user"][-1]
    assert user["parse_data"]["intent"]["name"] == "request_human"
    assert user["parse_data"]["person_request"]["phrase"] == "转人工"
    # While it waits, each message hears the place in the queue.
    [waiting] = bot.say(sender, "还要等多久")
    assert waiting["text"] == response("utter_handoff_queue", queue_position=2)


def test_a_declined_person_opens_no_case(bot: Bot, store: CaseStore) -> None:
    sender = "visitor_handoff_declined"
    replies = bot.say(sender, "不用转人工")
    assert [r["text"] for r in replies] == [response("utter_anything_else")]
    assert store.open_case_of(sender) is None
    assert bot.tracker(sender)["paused"] is False


def test_while_an_agent_has_the_case_the_bot_says_nothing(
    bot: Bot, store: CaseStore
) -> None:
    sender = "visitor_handoff_silent"
    bot.say(sender, "借呗额度降了 找人工")
    case_id = claim(store, sender)
    token = bot.env.get("RASA_AUTH_TOKEN", "")
    relay_run(lambda r: r.joined(sender, AGENT_ID, AGENT_NAME), bot.rasa_url, token)
    # REST answers only once the whole pipeline (the guard too) is done.
    assert bot.say(sender, "好的我等着") == []
    after = events_after_text(bot.tracker(sender), "好的我等着")
    assert [e for e in after if e.get("event") == "bot"] == []
    # REST has no push: the agent's words are in the tracker (docs/channels.md).
    relay_run(
        lambda r: r.message(sender, "您的额度我来看一下", AGENT_ID, AGENT_NAME),
        bot.rasa_url,
        token,
    )
    last = bot_events(bot.tracker(sender))[-1]
    assert last["text"] == "您的额度我来看一下"
    assert last["metadata"]["human_agent"] == {"id": AGENT_ID, "name": AGENT_NAME}
    relay_run(lambda r: r.resolved(sender, AGENT_ID, AGENT_NAME), bot.rasa_url, token)
    mark_resolved(store, case_id)
    assert bot_events(bot.tracker(sender))[-1]["text"] == response(
        "utter_human_resolved", human_agent_name=AGENT_NAME
    )
    assert bot.tracker(sender)["paused"] is False
    assert bot.say(sender, "借呗利息怎么算"), "the bot answers again"


async def test_the_agent_joins_writes_and_hands_back_on_socketio(
    bot: Bot, store: CaseStore
) -> None:
    session = f"web-{uuid.uuid4().hex}"
    token = bot.env.get("RASA_AUTH_TOKEN") or None
    relay = RasaRelay(bot.rasa_url, token)
    try:
        async with ChatUser(bot.rasa_url, session) as user:
            await user.say("借呗咋没了 快给我接真人")
            [opened] = await user.next()
            case = store.open_case_of(session)
            assert case is not None and case["channel"] == "socketio"
            # Earlier tests' claims make the typical wait known.
            assert store.typical_wait_s() is not None
            assert opened == {"text": opened_text(store, case["case_id"])}
            assert "预计等待约" in opened["text"]
            await user.say("人呢")
            [waiting] = await user.next()
            # With or without the wait still ahead (a few seconds here).
            position = store.queue_position(case["case_id"])
            assert waiting["text"] in (
                response("utter_handoff_queue", queue_position=position),
                response(
                    "utter_handoff_queue_with_wait",
                    queue_position=position,
                    wait_minutes=1,
                ),
            )

            claim(store, session)
            await relay.joined(session, AGENT_ID, AGENT_NAME)
            [joined] = await user.next()
            assert joined == {
                "text": response("utter_human_joined", human_agent_name=AGENT_NAME)
            }
            await relay.message(
                session, "您好，我是小安，入口是什么时候不见的？", AGENT_ID, AGENT_NAME
            )
            [words] = await user.next()
            assert words == {
                "text": "您好，我是小安，入口是什么时候不见的？",
                "human_agent": {"name": AGENT_NAME},
            }
            stored = bot_events(await asyncio.to_thread(bot.tracker, session))[-1]
            assert stored["metadata"]["human_agent"]["id"] == AGENT_ID

            await relay.resolved(session, AGENT_ID, AGENT_NAME)
            [back] = await user.next()
            assert back["text"] == response(
                "utter_human_resolved", human_agent_name=AGENT_NAME
            )
            mark_resolved(store, case["case_id"])
            await user.say("借呗利息怎么算")
            [answer] = await user.next()
            assert "human_agent" not in answer and "日利率" in answer["text"]
            # A new request opens a new case (the old one is resolved).
            await user.say("还是转人工吧")
            [again] = await user.next()
            reopened = store.open_case_of(session)
            assert reopened is not None and reopened["case_id"] != case["case_id"]
            assert reopened["case_id"] in again["text"]
    finally:
        await relay.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Per test: Playwright's sync API holds an event loop in the test thread
    while it runs, which the async tests after it must not find."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def demo_page(bot: Bot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from page_server(
        bot, tmp_path_factory.mktemp("page"), PAGE_PORT, BOT_PROFILE="demo"
    )


def test_the_chat_page_shows_an_agents_message_as_the_agents(
    browser: Browser, demo_page: str, bot: Bot, store: CaseStore
) -> None:
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    watch = Watch(page)
    page.goto(demo_page)
    wait_ready(page)
    session = page.evaluate("localStorage.getItem('jiebei.demo.session')")
    send(page, "我要转人工")
    page.locator(".msg.bot .bubble", has_text="工单号").wait_for(
        timeout=REPLY_TIMEOUT_MS
    )
    claim(store, session)
    token = bot.env.get("RASA_AUTH_TOKEN", "")
    relay_run(lambda r: r.joined(session, AGENT_ID, AGENT_NAME), bot.rasa_url, token)
    words = f"您好 {INJECTION} 我是小安"
    relay_run(
        lambda r: r.message(session, words, AGENT_ID, AGENT_NAME), bot.rasa_url, token
    )
    agent = page.locator(".msg.agent")
    agent.first.wait_for(timeout=REPLY_TIMEOUT_MS)
    assert agent.locator(".agent-label").all_inner_texts() == ["人工客服 · 小安"]
    assert bubbles(page, "agent") == [words]
    assert all("您好" not in text for text in bubbles(page, "bot"))
    assert page.locator("#log img").count() == 0
    assert page.evaluate("window.__pwned") is None
    # The user answers the person: no "typing" dots for a bot that stays silent.
    send(page, "入口昨天不见的")
    page.locator(".msg.user .bubble", has_text="入口昨天不见的").wait_for()
    assert page.locator("#typing").is_hidden()
    # A reload shows the agent's message as the agent's still.
    page.reload()
    wait_ready(page)
    assert page.locator(".msg.agent .agent-label").all_inner_texts() == [
        "人工客服 · 小安"
    ]
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "agent-message.png"))
    assert watch.errors == []
    context.close()


# --- two production-profile instances, outside the service hours ------------------


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, postgres: Postgres, redis: Redis
) -> Iterator[Dict[str, Any]]:
    """Two Rasa instances on PostgreSQL + Redis, one action server; desk closed."""
    workdir = tmp_path_factory.mktemp("handoff_prod")
    tracker_db = f"jiebei_tracker_{uuid.uuid4().hex[:8]}"
    accounts_db = postgres.create_database("jiebei_accounts")
    key_prefix = f"jiebeitest{uuid.uuid4().hex[:8]}"
    action_port, ports = free_port(), [free_port(), free_port()]
    hours = closed_hours_now()
    env = {
        **prod_env(
            workdir, action_port, postgres, redis, tracker_db, accounts_db, key_prefix
        ),
        "DESK_SERVICE_HOURS": hours,
    }
    seed_accounts(env)
    processes: List[Any] = []
    try:
        processes.append(start_actions(env, action_port, workdir / "actions.log"))
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            processes += list(
                pool.map(
                    lambda i: start_rasa(
                        env, ports[i], workdir / f"rasa{i}.log", "endpoints.prod.yml"
                    ),
                    [0, 1],
                )
            )
        yield {
            "urls": [f"http://127.0.0.1:{port}" for port in ports],
            "env": env,
            "hours": hours,
            "store": CaseStore(env["ACCOUNT_DB_URL"]),
        }
    finally:
        for process in processes:
            stop(process)
        postgres.drop_database(tracker_db)
        postgres.drop_database(accounts_db)
        keys = redis_client.Redis(redis.host, redis.port)
        for key in keys.scan_iter(f"{key_prefix}:*"):
            keys.delete(key)


async def test_outside_hours_and_across_instances(pair: Dict[str, Any]) -> None:
    """The user's socket on instance A; the desk's relay through instance B."""
    first, second = pair["urls"]
    store: CaseStore = pair["store"]
    hours: str = pair["hours"]
    session = f"web-{uuid.uuid4().hex}"
    relay = RasaRelay(second, pair["env"]["RASA_AUTH_TOKEN"])
    try:
        async with ChatUser(first, session) as user:
            await user.say("借呗不见了，我要转人工")
            [opened] = await user.next()
            case = store.open_case_of(session)
            assert case is not None and case["status"] == "waiting"
            assert f"每天 {hours}" in opened["text"]
            assert f"{hours[:5]} 上线" in opened["text"]
            assert case["case_id"] in opened["text"]
            await user.say("那我明天再来")
            [closed] = await user.next()
            assert (
                f"{hours[:5]} 上线" in closed["text"] and "已为您保留" in closed["text"]
            )
            assert store.open_case_of(session)["status"] == "waiting"  # kept

            # An agent takes it anyway; instance B carries the agent's words.
            claim(store, session)
            await relay.joined(session, AGENT_ID, AGENT_NAME)
            [joined] = await user.next()
            assert AGENT_NAME in joined["text"]
            await relay.message(session, "我在，您说", AGENT_ID, AGENT_NAME)
            [words] = await user.next()
            assert words == {"text": "我在，您说", "human_agent": {"name": AGENT_NAME}}
            await relay.resolved(session, AGENT_ID, AGENT_NAME)
            [back] = await user.next()
            assert back["text"].startswith(f"人工客服{AGENT_NAME}已结束本次服务")
        print(
            "\nrelay through instance B reached the socket on instance A:",
            json.dumps(words, ensure_ascii=False),
        )
    finally:
        await relay.close()
