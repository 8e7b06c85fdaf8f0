"""The production profile against real servers (run by `make e2e`, part of `make test`).

Two Rasa servers share the PostgreSQL tracker store and the Redis lock store
(endpoints.prod.yml) with one action server whose account store is PostgreSQL;
the second server runs two Sanic workers (``SANIC_WORKERS=2``, as ``make serve
PROFILE=prod WORKERS=2``), so three Rasa processes take the conversations.
The servers come from devtools/servers.py: the machine's own, or throwaway ones;
a missing server fails the test with what to install, never a skip.

Account lookups use ``ACCOUNT_IDENTITY=sender`` (fixture ids as conversation ids)
because the production profile's signed identity belongs to the channels issue.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import urllib.error
import urllib.request
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import psutil  # type: ignore[import-untyped]
import pytest
import redis as redis_client
import websockets.client
from websockets.typing import Origin

from devtools.harness import (
    Bot,
    http,
    prod_env,
    seed_accounts,
    start_actions,
    start_rasa,
    stop,
)
from devtools.servers import Postgres, Redis, free_port, throwaway_postgres
from settings import RasaServerSettings, load

pytestmark = pytest.mark.e2e

# Ten turns each; several scripts so that conversations end in different states.
SCRIPTS: Dict[str, List[str]] = {
    "no_real_name": ["你好", "我的支付宝里找不到借呗了", "正常", "还没实名", "绑了一张",
                     "六百多", "没有逾期", "没申请过", "好的", "谢谢"],
    "frozen": ["在吗", "借呗入口没了", "被冻结了", "实名了", "绑了两张", "七百",
               "没有", "一次都没有", "嗯", "好"],
    "low_score": ["您好", "借呗咋没了", "正常", "实名了", "有一张卡", "五百多",
                  "没逾期过", "没有", "知道了", "谢谢你"],
    "faq_first": ["借呗怎么还款", "那我的借呗入口为啥不见了", "正常", "实名过了",
                  "没绑卡", "六百五", "有过一次逾期", "两次", "行", "谢谢"],
}  # fmt: skip
CONVERSATIONS = 20
# Sanic workers of each Rasa instance.
WORKERS = (1, 2)


@dataclass
class Cluster:
    """Two Rasa instances (the second with two workers), one action server."""

    env: Dict[str, str]
    workdir: Path
    rasa_ports: List[int]
    action_port: int
    postgres: Postgres
    redis: Redis
    processes: Dict[str, Any] = field(default_factory=dict)

    def url(self, instance: int) -> str:
        return f"http://127.0.0.1:{self.rasa_ports[instance]}"

    def bot(self, instance: int) -> Bot:
        return Bot(self.url(instance), f"http://127.0.0.1:{self.action_port}", self.env)

    def start_rasa(self, instance: int, env: Optional[Dict[str, str]] = None) -> None:
        self.processes[f"rasa{instance}"] = start_rasa(
            {**(env or self.env), "SANIC_WORKERS": str(WORKERS[instance])},
            self.rasa_ports[instance],
            self.workdir / f"rasa{instance}.log",
            endpoints="endpoints.prod.yml",
        )

    def stop_rasa(self, instance: int) -> None:
        stop(self.processes.pop(f"rasa{instance}", None))

    def start_actions(self, env: Optional[Dict[str, str]] = None) -> None:
        self.processes["actions"] = start_actions(
            env or self.env, self.action_port, self.workdir / "actions.log"
        )

    def stop_actions(self) -> None:
        stop(self.processes.pop("actions", None))


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres: Postgres, redis: Redis
) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("prod")
    tracker_db = f"jiebei_tracker_{uuid.uuid4().hex[:8]}"  # created by Rasa
    accounts_db = postgres.create_database("jiebei_accounts")
    key_prefix = f"jiebeitest{uuid.uuid4().hex[:8]}"
    action_port = free_port()
    env = prod_env(
        workdir, action_port, postgres, redis, tracker_db, accounts_db, key_prefix
    )
    seed_accounts(env)
    running = Cluster(env, workdir, [free_port(), free_port()], action_port,
                      postgres, redis)  # fmt: skip
    try:
        running.start_actions()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(running.start_rasa, [0, 1]))
        yield running
    finally:
        for name in list(running.processes):
            stop(running.processes.pop(name))
        postgres.drop_database(tracker_db)
        postgres.drop_database(accounts_db)
        keys = redis_client.Redis(redis.host, redis.port)
        for key in keys.scan_iter(f"{key_prefix}:*"):
            keys.delete(key)


def user_texts(tracker: Dict[str, Any]) -> List[str]:
    return [e["text"] for e in tracker["events"] if e.get("event") == "user"]


def state(tracker: Dict[str, Any]) -> Dict[str, Any]:
    """The dialogue state compared between runs: slots and the active form."""
    return {
        "slots": tracker["slots"],
        "active_loop": (tracker.get("active_loop") or {}).get("name"),
        "paused": tracker["paused"],
    }


def converse(cluster: Cluster, sender: str, turns: Sequence[str], offset: int) -> None:
    """Send the turns in order, alternating between the two instances."""
    for index, text in enumerate(turns):
        replies = cluster.bot((index + offset) % 2).say(sender, text)
        assert replies, f"{sender} turn {index} ({text}) got no reply"


def test_two_instances_keep_twenty_concurrent_conversations_intact(
    cluster: Cluster,
) -> None:
    # Reference: each script alone, on one instance, one after another.
    reference = {}
    for name, turns in SCRIPTS.items():
        sender = f"ref_{name}_{uuid.uuid4().hex[:6]}"
        for text in turns:
            cluster.bot(0).say(sender, text)
        reference[name] = state(cluster.bot(0).tracker(sender))
    assert reference["no_real_name"]["slots"]["real_name_verified"] is False
    assert reference["frozen"]["slots"]["account_status"] == "frozen"

    names = list(SCRIPTS)
    plan = {
        f"conc_{i:02d}_{uuid.uuid4().hex[:6]}": names[i % len(names)]
        for i in range(CONVERSATIONS)
    }
    with concurrent.futures.ThreadPoolExecutor(CONVERSATIONS) as pool:
        futures = [
            pool.submit(converse, cluster, sender, SCRIPTS[script], offset)
            for offset, (sender, script) in enumerate(plan.items())
        ]
        for future in futures:
            future.result()

    for sender, script in plan.items():
        for instance in (0, 1):
            tracker = cluster.bot(instance).tracker(sender)
            assert user_texts(tracker) == SCRIPTS[script], sender
            assert state(tracker) == reference[script], sender


def test_a_burst_to_both_instances_loses_and_doubles_nothing(cluster: Cluster) -> None:
    sender = f"burst_{uuid.uuid4().hex[:6]}"
    texts = [f"借呗额度是多少 第{i}条" for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(len(texts)) as pool:
        list(pool.map(lambda i: cluster.bot(i % 2).say(sender, texts[i]),
                      range(len(texts))))  # fmt: skip
    said = user_texts(cluster.bot(0).tracker(sender))
    assert sorted(said) == sorted(texts)


# Connections opened at most while looking for enough on each worker.
MAX_CONNECTIONS = 60


class WorkerConnection:
    """A keep-alive HTTP connection to a Rasa server, and the worker serving it.

    A connection stays with the worker that accepted it, so messages sent on
    connections of different workers are handled by different processes.
    """

    def __init__(self, port: int, workers: Sequence[int]) -> None:
        self.connection = HTTPConnection("127.0.0.1", port, timeout=30)
        self.request("GET", "/")
        local_port = self.connection.sock.getsockname()[1]
        owners = [
            pid
            for pid in workers
            for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.raddr and c.raddr.port == local_port
        ]
        assert len(owners) == 1, owners
        self.worker = owners[0]

    def request(self, method: str, path: str, body: Optional[Any] = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        self.connection.request(method, path, body=data, headers=headers)
        response = self.connection.getresponse()
        payload = response.read()
        assert response.status == 200, (response.status, payload[:200])
        return json.loads(payload) if payload.startswith((b"[", b"{")) else payload

    def say(self, sender: str, text: str) -> List[Dict[str, Any]]:
        replies: List[Dict[str, Any]] = self.request(
            "POST", "/webhooks/rest/webhook", {"sender": sender, "message": text}
        )
        return replies


def connections_per_worker(
    cluster: Cluster, instance: int, per_worker: int
) -> List[List[WorkerConnection]]:
    """``per_worker`` keep-alive connections to each worker of ``instance``."""
    server = psutil.Process(cluster.processes[f"rasa{instance}"].pid)
    workers = [child.pid for child in server.children()]
    assert len(workers) == WORKERS[instance], workers
    found: Dict[int, List[WorkerConnection]] = {pid: [] for pid in workers}
    opened: List[WorkerConnection] = []
    while any(len(held) < per_worker for held in found.values()):
        assert len(opened) < MAX_CONNECTIONS, {p: len(c) for p, c in found.items()}
        connection = WorkerConnection(cluster.rasa_ports[instance], workers)
        opened.append(connection)
        found[connection.worker].append(connection)
    for connection in opened:
        if connection not in found[connection.worker][:per_worker]:
            connection.connection.close()
    return [held[:per_worker] for held in found.values()]


def test_two_workers_take_turns_in_one_conversation(cluster: Cluster) -> None:
    """Messages of one sender alternate between the two workers of instance 1:
    one tracker, every message once and in order, the same dialogue state as
    the conversation on one process."""
    turns = SCRIPTS["frozen"]
    reference = f"ref_workers_{uuid.uuid4().hex[:6]}"
    for text in turns:
        cluster.bot(0).say(reference, text)
    first, second = (held[0] for held in connections_per_worker(cluster, 1, 1))
    assert first.worker != second.worker
    sender = f"workers_{uuid.uuid4().hex[:6]}"
    for index, text in enumerate(turns):
        replies = (first, second)[index % 2].say(sender, text)
        assert replies and not trouble_reply(replies), (index, text, replies)
    tracker = cluster.bot(1).tracker(sender)
    assert user_texts(tracker) == turns
    assert state(tracker) == state(cluster.bot(0).tracker(reference))


def test_a_burst_to_two_workers_loses_and_doubles_nothing(cluster: Cluster) -> None:
    """8 messages of one sender at once, 4 on each worker: the lock store makes
    the workers take them one at a time, so each is stored once."""
    groups = connections_per_worker(cluster, 1, 4)
    connections = [c for pair in zip(*groups, strict=True) for c in pair]
    sender = f"workerburst_{uuid.uuid4().hex[:6]}"
    texts = [f"借呗额度是多少 第{i}条" for i in range(len(connections))]
    with concurrent.futures.ThreadPoolExecutor(len(connections)) as pool:
        replies = list(pool.map(lambda c, t: c.say(sender, t), connections, texts))
    assert all(replies)
    said = user_texts(cluster.bot(0).tracker(sender))
    assert sorted(said) == sorted(texts)


def websockets_per_worker(cluster: Cluster, instance: int) -> Dict[int, int]:
    """Established connections each worker of ``instance`` holds to its port."""
    server = psutil.Process(cluster.processes[f"rasa{instance}"].pid)
    port = cluster.rasa_ports[instance]
    return {
        worker.pid: sum(
            1
            for c in worker.net_connections(kind="tcp")
            if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
        )
        for worker in server.children()
    }


class Session:
    """A socket.io session as the chat page opens it: WebSocket only (one
    connection), spoken by hand (engine.io 4 frames: python-socketio's
    WebSocket client needs a newer aiohttp than Rasa allows)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.session_id = uuid.uuid4().hex

    @classmethod
    async def open(cls, url: str, origin: str) -> Session:
        address = (
            url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        )
        session = cls(await websockets.client.connect(address, origin=Origin(origin)))
        assert (await session.frame()).startswith("0")  # engine.io open
        await session.connection.send("40")  # socket.io connect
        assert (await session.frame()).startswith("40")
        await session.emit("session_request", {"session_id": session.session_id})
        assert (await session.event())[0] == "session_confirm"
        return session

    async def frame(self) -> str:
        """The next frame; engine.io pings are answered on the way."""
        while True:
            frame = str(await asyncio.wait_for(self.connection.recv(), 30))
            if frame != "2":
                return frame
            await self.connection.send("3")

    async def event(self) -> List[Any]:
        """The next socket.io event: [name, data]."""
        frame = await self.frame()
        assert frame.startswith("42"), frame
        event: List[Any] = json.loads(frame[2:])
        return event

    async def emit(self, name: str, data: Dict[str, Any]) -> None:
        await self.connection.send("42" + json.dumps([name, data]))

    async def say(self, text: str) -> Dict[str, Any]:
        """Send ``text``; the first bot message of the answer."""
        await self.emit(
            "user_uttered", {"message": text, "session_id": self.session_id}
        )
        name, reply = await self.event()
        assert name == "bot_uttered", (name, reply)
        return dict(reply)


async def sessions_on_both_workers(cluster: Cluster) -> None:
    origin = load(RasaServerSettings, cluster.env).web_allowed_origins[0]
    sessions: List[Session] = []
    try:
        while min(websockets_per_worker(cluster, 1).values()) == 0:
            assert len(sessions) < 20, websockets_per_worker(cluster, 1)
            sessions.append(await Session.open(cluster.url(1), origin))
        replies = await asyncio.gather(*(s.say("借呗怎么还款") for s in sessions))
        for reply in replies:
            assert reply.get("text") and "系统暂时出了点问题" not in reply["text"]
    finally:
        for session in sessions:
            await session.connection.close()


def test_socketio_sessions_on_both_workers_get_their_answers(
    cluster: Cluster,
) -> None:
    """The chat page's transport (WebSocket only): a session is one connection,
    held by one worker, which answers it."""
    asyncio.run(sessions_on_both_workers(cluster))


def without_recipient(replies: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "recipient_id"} for r in replies]


def test_a_restarted_instance_continues_the_conversation_mid_form(
    cluster: Cluster,
) -> None:
    turns = SCRIPTS["no_real_name"]
    reference = f"ref_restart_{uuid.uuid4().hex[:6]}"
    sender = f"restart_{uuid.uuid4().hex[:6]}"
    for text in turns[:5]:
        cluster.bot(0).say(reference, text)
        cluster.bot(0).say(sender, text)
    before = state(cluster.bot(0).tracker(sender))
    assert before["active_loop"] == "diagnosis_form"
    assert before["slots"]["real_name_verified"] is False

    cluster.stop_rasa(0)
    cluster.start_rasa(0)

    assert state(cluster.bot(0).tracker(sender)) == before
    expected_reply = without_recipient(cluster.bot(1).say(reference, turns[5]))
    assert without_recipient(cluster.bot(0).say(sender, turns[5])) == expected_reply
    assert state(cluster.bot(0).tracker(sender)) == state(
        cluster.bot(0).tracker(reference)
    )


def trouble_reply(replies: List[Dict[str, Any]]) -> bool:
    return any("系统暂时出了点问题" in str(r.get("text")) for r in replies)


def test_action_server_down_gets_an_apology_and_the_human_offer(
    cluster: Cluster,
) -> None:
    sender = f"down_{uuid.uuid4().hex[:6]}"
    cluster.stop_actions()
    try:
        # the HTTP timeout bounds the wait: an answer, not silence
        replies = http(
            "POST",
            f"{cluster.url(1)}/webhooks/rest/webhook",
            {"sender": sender, "message": "我的支付宝里找不到借呗了"},
            timeout=10,
        )
        assert trouble_reply(replies)
        assert any(
            b["title"] == "转人工" for r in replies for b in r.get("buttons", [])
        )
        assert user_texts(cluster.bot(1).tracker(sender)) == [
            "我的支付宝里找不到借呗了"
        ]
    finally:
        cluster.start_actions()
    after = cluster.bot(1).say(
        f"back_{uuid.uuid4().hex[:6]}", "我的支付宝里找不到借呗了"
    )
    assert after and not trouble_reply(after)


def test_account_store_down_takes_the_ask_the_user_path(cluster: Cluster) -> None:
    cluster.stop_actions()
    broken = {**cluster.env, "ACCOUNT_DB_URL": "postgresql://postgres@127.0.0.1:1/none"}
    try:
        cluster.start_actions(broken)
        bot = cluster.bot(0)
        bot.reset("demo_account_frozen")
        bot.say("demo_account_frozen", "我的支付宝里找不到借呗了")
        said = bot.utterances("demo_account_frozen")
        assert "utter_lookup_unavailable" in said
        assert said[-1] == "utter_ask_account_status"  # asks what it could not read
    finally:
        cluster.stop_actions()
        cluster.start_actions()


def test_after_a_postgresql_restart_the_next_messages_work(cluster: Cluster) -> None:
    with ExitStack() as stack:
        pg = stack.enter_context(throwaway_postgres())
        env = {**cluster.env, "TRACKER_DB_HOST": pg.server.host,
               "TRACKER_DB_PORT": str(pg.port), "TRACKER_DB_NAME": "tracker"}  # fmt: skip
        port = free_port()
        log = cluster.workdir / "rasa_pg_restart.log"
        process = start_rasa(env, port, log, endpoints="endpoints.prod.yml")
        stack.callback(stop, process)
        bot = Bot(f"http://127.0.0.1:{port}", "", env)
        sender = f"pgrestart_{uuid.uuid4().hex[:6]}"
        turns = SCRIPTS["no_real_name"]
        for text in turns[:3]:
            assert bot.say(sender, text)

        pg.restart()

        for text in turns[3:6]:
            replies = bot.say(sender, text)
            assert replies and not trouble_reply(replies), text
        assert user_texts(bot.tracker(sender)) == turns[:6]
        assert bot.tracker(sender)["active_loop"]["name"] == "diagnosis_form"


def test_personal_data_never_reaches_the_postgresql_tracker_store(
    cluster: Cluster,
) -> None:
    import sqlalchemy as sa

    from devtools.privacy_cases import decoded, leaked, messages, raw_values

    sender = f"privacy_{uuid.uuid4().hex[:6]}"
    for index, text in enumerate(messages()):
        assert cluster.bot(index % 2).say(sender, text)
    engine = sa.create_engine(cluster.postgres.url(cluster.env["TRACKER_DB_NAME"]))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT data FROM events WHERE sender_id = :s"), {"s": sender}
            ).all()
    finally:
        engine.dispose()
    stored = decoded(row[0] for row in rows)
    assert "110***********002X" in stored
    assert len([row for row in rows if '"event": "user"' in row[0]]) == len(messages())
    for value in raw_values():
        assert not leaked(value, stored), value


def status_of(method: str, url: str, body: Optional[bytes] = None) -> int:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_the_http_api_answers_only_with_the_token(cluster: Cluster) -> None:
    """`--enable-api` in the production profile: tracker, parse and status need it."""
    base, token = cluster.url(0), cluster.env["RASA_AUTH_TOKEN"]
    parse = json.dumps({"text": "借呗不见了"}).encode()
    calls = [
        ("GET", "/status", None),
        ("GET", "/conversations/prod_api_probe/tracker", None),
        ("POST", "/model/parse", parse),
    ]
    for method, path, body in calls:
        assert status_of(method, base + path, body) == 401, path
        assert status_of(method, f"{base}{path}?token=wrong{token}", body) == 401
        assert status_of(method, f"{base}{path}?token={token}", body) == 200, path
    # The public channel needs no token.
    assert cluster.bot(0).say(f"api_probe_{uuid.uuid4().hex[:6]}", "你好")


def test_the_action_server_answers_only_the_rasa_server(cluster: Cluster) -> None:
    """Without the shared secret the action server refuses; Rasa has it."""
    actions = f"http://127.0.0.1:{cluster.action_port}"
    call = json.dumps(
        {
            "next_action": "validate_diagnosis_form",
            "sender_id": "demo_account_frozen",
            "tracker": {"sender_id": "demo_account_frozen", "events": []},
            "domain": {},
            "version": "3.6.21",
        }
    ).encode()
    assert status_of("POST", f"{actions}/webhook", call) == 401
    request = urllib.request.Request(
        f"{actions}/webhook",
        data=call,
        method="POST",
        headers={"Content-Type": "application/json", "X-Action-Token": "x" * 48},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401
    assert status_of("GET", f"{actions}/actions") == 401
    assert status_of("GET", f"{actions}/health") == 200
    # Rasa sends the secret: a diagnosis (custom actions) still works.
    sender = f"demo_account_frozen_{uuid.uuid4().hex[:4]}"
    replies = cluster.bot(0).say(sender, "我的支付宝里找不到借呗了")
    assert replies and not trouble_reply(replies)
