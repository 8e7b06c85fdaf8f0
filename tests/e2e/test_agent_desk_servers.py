"""The agent desk over the real servers, through its HTTP API (run by `make e2e`).

* Embedded profile (SQLite case and tracker stores): the page server and the
  bot (Rasa + action server) are stopped mid-case and started again on the
  same stores: the case, its claim, the agent's session and the transcript are
  all still there, and the agent goes on writing and resolves.
* Two agents claim the same case at once (two threads): one 200, one 409
  naming the holder; in the embedded profile on one page server, and in the
  production profile on two page servers in front of two Rasa instances over
  one PostgreSQL (tracker, cases, desk) and one Redis (locks, rate limits).
"""

from __future__ import annotations

import concurrent.futures
import secrets
import subprocess
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import redis as redis_client

from desk.store import DeskStore
from devtools.desk import Answer, DeskAgent
from devtools.harness import (
    Bot,
    base_env,
    prod_env,
    seed_accounts,
    start_actions,
    start_page_server,
    start_rasa,
    stop,
)
from devtools.servers import Postgres, Redis, free_port

pytestmark = pytest.mark.e2e

DEMO_PASSWORD = "demo-password"
ASK = "转人工"
# Rounds of two agents claiming one case at once.
RACES = 3


@dataclass
class Site:
    """Rasa instance(s), one action server and page server(s) on fixed ports.

    Page server ``i`` puts agents' words through Rasa instance ``i``. Stopped
    and started again, everything comes back on the same ports and stores.
    """

    env: Dict[str, str]
    workdir: Path
    action_port: int
    rasa_ports: List[int]
    page_ports: List[int]
    endpoints: str = "endpoints.yml"
    processes: Dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def rasa_url(self, instance: int = 0) -> str:
        return f"http://127.0.0.1:{self.rasa_ports[instance]}"

    def page_url(self, instance: int = 0) -> str:
        return f"http://127.0.0.1:{self.page_ports[instance]}"

    def bot(self, instance: int = 0) -> Bot:
        return Bot(
            self.rasa_url(instance), f"http://127.0.0.1:{self.action_port}", self.env
        )

    def start(self) -> None:
        self.processes["actions"] = start_actions(
            self.env, self.action_port, self.workdir / "actions.log"
        )
        with concurrent.futures.ThreadPoolExecutor(len(self.rasa_ports)) as pool:
            started = pool.map(self._start_rasa, range(len(self.rasa_ports)))
            for instance, process in enumerate(started):
                self.processes[f"rasa{instance}"] = process
        for instance, port in enumerate(self.page_ports):
            self.processes[f"page{instance}"] = start_page_server(
                self.env,
                port,
                self.workdir / f"page{instance}.log",
                self.rasa_url(instance),
            )

    def _start_rasa(self, instance: int) -> subprocess.Popen[bytes]:
        return start_rasa(
            self.env,
            self.rasa_ports[instance],
            self.workdir / f"rasa{instance}.log",
            endpoints=self.endpoints,
        )

    def stop(self) -> None:
        for name in sorted(self.processes, key=lambda n: n.startswith("actions")):
            stop(self.processes.pop(name))


@contextmanager
def running(site: Site) -> Iterator[Site]:
    try:
        site.start()
        yield site
    finally:
        site.stop()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The demo profile on SQLite files (the demo agents with the demo password)."""
    workdir = tmp_path_factory.mktemp("desk_embedded")
    action_port = free_port()
    env = {
        **base_env(workdir, action_port),
        "BOT_PROFILE": "demo",
        "ACCOUNT_IDENTITY": "sender",
    }
    seed_accounts(env)
    site = Site(env, workdir, action_port, [free_port()], [free_port()])
    with running(site):
        yield site


def ask_for_a_person(bot: Bot, agent: DeskAgent) -> Tuple[str, Dict[str, Any]]:
    """A new REST user asks for a person; the conversation id and its waiting case."""
    user = f"desk-user-{uuid.uuid4().hex[:8]}"
    bot.say(user, ASK)
    return user, agent.wait_for_case(user, "waiting")


def signed_in(base_url: str, username: str, password: str) -> DeskAgent:
    agent = DeskAgent(base_url)
    answer = agent.login(username, password)
    assert answer.ok, answer
    return agent


def lines(answer: Answer) -> List[Tuple[str, str, Optional[str]]]:
    """A case's transcript as (from, text, agent_id) tuples."""
    assert answer.ok, answer
    return [
        (entry["from"], entry["text"], entry.get("agent_id"))
        for entry in answer.body["transcript"]
    ]


def claim_at_once(first: DeskAgent, second: DeskAgent, case_id: str) -> List[Answer]:
    """Both agents claim ``case_id`` at the same moment (two threads, one barrier)."""
    barrier = threading.Barrier(2)

    def claim(agent: DeskAgent) -> Answer:
        barrier.wait(timeout=30)
        return agent.act(case_id, "claim")

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return list(pool.map(claim, [first, second]))


def assert_one_wins(answers: List[Answer], agents: List[DeskAgent]) -> DeskAgent:
    """One 200, one 409 naming the winner; the winning agent."""
    statuses = sorted(answer.status for answer in answers)
    assert statuses == [200, 409], [(a.status, a.body) for a in answers]
    winner = agents[[a.status for a in answers].index(200)]
    loser_answer = next(a for a in answers if a.status == 409)
    assert loser_answer.body["agent_id"] == winner.username, loser_answer.body
    return winner


def test_restart_mid_case_keeps_case_claim_and_transcript(embedded: Site) -> None:
    agent = signed_in(embedded.page_url(), "agent1", DEMO_PASSWORD)
    user, case = ask_for_a_person(embedded.bot(), agent)
    case_id = case["case_id"]
    assert agent.act(case_id, "claim").status == 200
    assert agent.act(case_id, "messages", {"text": "您好，我是小安，我来帮您看看"}).ok
    embedded.bot().say(user, "好的，我等您")
    before = lines(agent.case(case_id))
    assert ("user", ASK, None) in before
    assert ("agent", "您好，我是小安，我来帮您看看", "agent1") in before
    assert before[-1] == ("user", "好的，我等您", None)

    embedded.stop()
    embedded.start()

    # The same session (the cookie), the same claim, the same transcript.
    again = agent.case(case_id)
    assert again.ok, again
    assert again.body["case"]["status"] == "active"
    assert again.body["case"]["agent_id"] == "agent1"
    assert lines(again) == before
    other = signed_in(embedded.page_url(), "agent2", DEMO_PASSWORD)
    taken = other.act(case_id, "claim")
    assert taken.status == 409 and taken.body["agent_id"] == "agent1"

    # The agent goes on writing: in the desk's transcript and in Rasa's tracker.
    assert agent.act(case_id, "messages", {"text": "您的账户已恢复正常"}).ok
    assert lines(agent.case(case_id))[-1] == ("agent", "您的账户已恢复正常", "agent1")
    events = embedded.bot().tracker(user)["events"]
    said = [
        e
        for e in events
        if e["event"] == "bot" and e.get("text") == "您的账户已恢复正常"
    ]
    assert said and said[-1]["metadata"]["human_agent"]["id"] == "agent1"

    # Resolved: the bot answers the user again.
    assert agent.act(case_id, "resolve", {"note": "重启后继续处理完毕"}).ok
    assert embedded.bot().say(user, "借呗怎么还款"), "the bot did not answer"


def test_two_agents_claim_at_once(embedded: Site) -> None:
    first = signed_in(embedded.page_url(), "agent1", DEMO_PASSWORD)
    second = signed_in(embedded.page_url(), "agent2", DEMO_PASSWORD)
    for _ in range(RACES):
        _, case = ask_for_a_person(embedded.bot(), first)
        answers = claim_at_once(first, second, case["case_id"])
        winner = assert_one_wins(answers, [first, second])
        held = winner.case(case["case_id"]).body["case"]
        assert held["status"] == "active" and held["agent_id"] == winner.username


# ---------------------------------------------------------------- production profile


@pytest.fixture(scope="module")
def prod(
    tmp_path_factory: pytest.TempPathFactory, postgres: Postgres, redis: Redis
) -> Iterator[Tuple[Site, Dict[str, str]]]:
    """Two Rasa instances, two page servers, one PostgreSQL and one Redis.

    The production profile refuses the demo password: the agents get real
    ones (written to the desk's tables before the page servers start).
    """
    workdir = tmp_path_factory.mktemp("desk_prod")
    tracker_db = f"jiebei_tracker_{uuid.uuid4().hex[:8]}"  # created by Rasa
    accounts_db = postgres.create_database("jiebei_accounts")
    key_prefix = f"jiebeitest{uuid.uuid4().hex[:8]}"
    action_port = free_port()
    env = prod_env(
        workdir, action_port, postgres, redis, tracker_db, accounts_db, key_prefix
    )
    seed_accounts(env)
    passwords = {
        "agent1": secrets.token_urlsafe(18),
        "agent2": secrets.token_urlsafe(18),
    }
    store = DeskStore(env["ACCOUNT_DB_URL"])
    store.add_agent("agent1", "小安", "supervisor", passwords["agent1"], "prod")
    store.add_agent("agent2", "小宁", "agent", passwords["agent2"], "prod")
    site = Site(
        env,
        workdir,
        action_port,
        [free_port(), free_port()],
        [free_port(), free_port()],
        endpoints="endpoints.prod.yml",
    )
    try:
        with running(site):
            yield site, passwords
    finally:
        postgres.drop_database(tracker_db)
        postgres.drop_database(accounts_db)
        keys = redis_client.Redis(redis.host, redis.port)
        for key in keys.scan_iter(f"{key_prefix}:*"):
            keys.delete(key)


def test_prod_two_agents_on_two_page_servers(
    prod: Tuple[Site, Dict[str, str]],
) -> None:
    site, passwords = prod
    first = signed_in(site.page_url(0), "agent1", passwords["agent1"])
    second = signed_in(site.page_url(1), "agent2", passwords["agent2"])
    for round_ in range(RACES):
        # Users of either Rasa instance: every case is in both page servers' queue.
        user, case = ask_for_a_person(site.bot(round_ % 2), first)
        second.wait_for_case(user, "waiting")
        answers = claim_at_once(first, second, case["case_id"])
        winner = assert_one_wins(answers, [first, second])
        loser = second if winner is first else first

        # The winner writes through its page server and its Rasa instance; the
        # words are in the shared tracker store, read from the other instance.
        text = f"您好，第 {round_ + 1} 位用户，我来处理"
        assert winner.act(case["case_id"], "messages", {"text": text}).ok
        other_instance = 1 if winner is first else 0
        events = site.bot(other_instance).tracker(user)["events"]
        assert [
            e["metadata"]["human_agent"]["id"]
            for e in events
            if e["event"] == "bot" and e.get("text") == text
        ] == [winner.username]
        # Only the holder may write; the other gets 403.
        refused = loser.act(case["case_id"], "messages", {"text": "我也来"})
        assert refused.status == 403, refused
        assert winner.act(case["case_id"], "resolve", {"note": "完成"}).ok
