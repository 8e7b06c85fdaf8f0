"""`make bench`: end-to-end reply latency of the bot beside NLU-only and a bare Rasa.

Systems, measured one after another in the same run (never two at once: they
would compete for the same cores):

- ``embedded``: our model with endpoints.yml (SQLite tracker in a temporary
  folder, in-memory lock store), the action server with a SQLite account store;
- ``prod``: endpoints.prod.yml: a fresh PostgreSQL tracker database (Rasa
  creates it), a Redis lock store under a key prefix of its own, a fresh
  PostgreSQL account store; ``BOT_PROFILE=prod``, ``ACCOUNT_IDENTITY=sender``.
  Databases and keys are removed afterwards;
- ``prod2``: the same with two Sanic workers (``SANIC_WORKERS=2``, as
  ``make serve PROFILE=prod WORKERS=2``): one port, two processes that each
  load the model, one action server;
- ``nlu``: ``POST /model/parse`` on the embedded server: the floor;
- ``bare``: a Rasa project generated here (a few intents, one static response
  each, rules) trained with our config.yml (same pipeline and policies), with
  the in-memory tracker, no custom actions and Rasa's plain REST channel. The
  ratio ours/bare is the cost of our actions, dialogue and stores;
- ``rasa-default``: the same project with Rasa's default configuration, as
  ``rasa init`` writes it (DIET, ResponseSelector, TED, UnexpecTED): the plain
  Rasa bot an outside measurement compares with.

How: simulated users (asyncio + aiohttp) talk to ``/webhooks/rest/webhook``.
Every conversation is a new account ``bench_<n>_<fixture id>`` (a copy of a
fixture account) used as the sender, so each conversation makes a real account
lookup. The user opens with 我的支付宝里找不到借呗了 and answers what the bot
asks, as devtools.scenarios.walk does (the fact questions, ``/affirm`` to the
steps, 5 to the rating), at most 8 messages; the next answer is read from the
REST replies. ``nlu``, ``bare`` and ``rasa-default`` replay the texts our
conversations sent in this run (the same message mix). At each level (1, 8,
32 users) the users loop conversations until the level's message budget is
spent, after a warm-up that is not counted (8 users at once, so that every
worker of a server gets some).

Latency is the wall clock of each HTTP request; percentiles include failed
requests. Errors: non-200, an exception, a timeout (30 s), an empty reply, or
the reply guard's apology (系统暂时出了点问题). msgs/s: answered messages per
second of the level's wall time. Also: the duration of the last ``make train``
(``.rasa/train_seconds``; Rasa restores unchanged components from its cache, so
it is a full training only after a clean clone), model size, and memory:
the Rasa server's once the model is loaded (before any message) and after the
run: RSS per process (a server with workers: the main process, then each
worker) and the server's total, shared pages counted once (the main process's
RSS plus each worker's private memory; bench_support.Usage); the action
server's RSS after the run. CPU: the seconds the Rasa server (all its
processes) and the action server used from the model loaded to the end of
the run, and per message measured (the warm-up counted too).

Targets (issue 12), read off one run: p95 at 8 users at most 1.5 × bare's;
production throughput at 32 users at least 1.5 × bare's (bare is one
process); no error at 32 users; the Rasa server's RSS at most 1.1 × bare's
(one process each; a server with workers is shown for reading).

Actions per user turn: the action server's count of actions run (``GET
/calls``, actions/server.py) over the messages of each level (``bare`` has no
action server: 0); each action is an HTTP round trip from Rasa carrying the
whole tracker. After the levels, a few conversations one message at a time
(a one-cause account, a several-cause account, an anonymous user) give the
count per kind of turn, with Rasa's predictions per turn (the policies run once
per predicted action, action_listen included).

Prints four tables, writes results/bench_e2e.json and results/bench_e2e.png.
Numbers, not assertions: a missed target is reported, not a failure.

    python -m scripts.bench_e2e [--levels 1,8,32] [--messages-per-user N]
        [--systems embedded,prod,prod2,nlu,bare,rasa-default] [--out results] [--quick]
        [--rasa-env NAME=VALUE,...] [--bare-env NAME=VALUE,...]

``--rasa-env`` / ``--bare-env`` add variables to the environment of our Rasa
servers / of the bare one (trying a setting such as ``MALLOC_ARENA_MAX=2``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import aiohttp
import redis as redis_client
from tabulate import tabulate  # type: ignore[import-untyped]

from devtools.harness import (
    MODEL,
    Bot,
    action_calls,
    base_env,
    prod_env,
    seed_accounts,
    start_actions,
    start_rasa,
    stop,
)
from devtools.project import ROOT
from devtools.scenarios import OPENING, Turn, costed_walk
from devtools.servers import free_port, postgres_server, redis_server
from scripts.bench_support import (
    BareModel,
    Usage,
    default_script,
    is_apology,
    next_answer,
    question_texts,
    seed_bench_accounts,
    start_bare_rasa,
    train_bare,
    usage_of,
)
from scripts.eval_nlu import percentile

SYSTEMS = ("embedded", "prod", "prod2", "nlu", "bare", "rasa-default")
# The plain bots our conversations are replayed to: "bare" has our NLU
# pipeline (config.yml) and one static answer per intent; "rasa-default" is the
# same project with Rasa's default configuration, as `rasa init` writes it.
REFERENCES = ("bare", "rasa-default")
# The production profile's systems and their Sanic workers.
PROD_WORKERS = {"prod": 1, "prod2": 2}
# Concurrent users of the warm-up: as many connections as this, so that the
# kernel hands some to every worker (one connection warms one worker only).
WARMUP_USERS = 8
TARGET_RATIO = 1.5
RATIO_USERS = 8
ZERO_ERROR_USERS = 32
# Production throughput at 32 users over the bare single process's, at least.
THROUGHPUT_RATIO = 1.5
THROUGHPUT_USERS = 32
# The Rasa server's RSS over bare's, at most (one process each).
MEMORY_RATIO = 1.1
MAX_MESSAGES = 8
REQUEST_TIMEOUT_S = 30.0
TRAIN_SECONDS = ROOT / ".rasa" / "train_seconds"

# The user's next text, given the message index in the conversation and the
# bot's replies to the previous message; None ends the conversation.
NextText = Callable[[int, List[Dict[str, Any]]], Optional[str]]


@dataclass(frozen=True)
class Options:
    """What to run, from the command line."""

    levels: List[int]
    messages_per_user: int
    min_messages: int
    warmup_messages: int
    systems: List[str]
    out: Path
    # Added to the environment of our Rasa servers / of the bare one.
    rasa_env: Dict[str, str] = field(default_factory=dict)
    bare_env: Dict[str, str] = field(default_factory=dict)

    def budget(self, users: int) -> int:
        """Messages measured at a level."""
        return max(self.messages_per_user * users, self.min_messages)

    def conversations_needed(self) -> int:
        """An upper bound of the conversations one system starts (one account each)."""
        per_level = (self.budget(users) + users for users in self.levels)
        return sum(per_level) + self.warmup_messages


@dataclass
class Sample:
    """One request: its wall clock and what went wrong, if anything."""

    ms: float
    error: Optional[str] = None


@dataclass
class LevelStats:
    """One system at one load level."""

    system: str
    users: int
    messages: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    msgs_per_s: float
    wall_s: float
    conversations: int
    error_kinds: Dict[str, int] = field(default_factory=dict)
    # Actions the action server ran per message (None: not measured).
    actions_per_turn: Optional[float] = None


@dataclass
class Resources:
    """Memory and model figures of one system."""

    system: str
    # The Rasa server after the run: RSS of all its processes added up.
    rasa_rss_mb: float
    actions_rss_mb: Optional[float]
    model_mb: float
    train_s: Optional[float]
    # The Rasa server's processes (main first, then workers), after the run.
    rasa_process_rss_mb: List[float] = field(default_factory=list)
    # After the run: main process RSS + workers' private memory (one process:
    # its RSS); what the server holds, shared pages counted once.
    rasa_footprint_mb: Optional[float] = None
    # The footprint once the model was loaded, before any message.
    rasa_loaded_mb: Optional[float] = None
    # CPU seconds of the Rasa server / action server from then to the end.
    rasa_cpu_s: Optional[float] = None
    actions_cpu_s: Optional[float] = None
    # The Rasa server's CPU seconds per process (main first): how evenly the
    # kernel spread the connections over the workers.
    rasa_process_cpu_s: List[float] = field(default_factory=list)


@dataclass
class Report:
    """Everything measured in this run."""

    # The machine's load (1, 5, 15 minutes) when the run began: the cores are
    # shared, and a busy machine slows every system of the run.
    load_average: List[float] = field(default_factory=list)
    levels: List[LevelStats] = field(default_factory=list)
    resources: List[Resources] = field(default_factory=list)
    # Texts our conversations sent, replayed to nlu and bare.
    recorded: List[List[str]] = field(default_factory=list)
    # Per system: the turns of the conversations walked one message at a time.
    turns: Dict[str, List[Turn]] = field(default_factory=dict)


# --- talking to a server ---------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a system is reached: its REST channel, or /model/parse."""

    name: str
    base_url: str
    parse_only: bool = False
    # The action server's count of actions run, for systems that have one.
    calls: Optional[Callable[[], int]] = None

    @property
    def url(self) -> str:
        """The URL every message is POSTed to."""
        path = "/model/parse" if self.parse_only else "/webhooks/rest/webhook"
        return self.base_url + path

    def payload(self, sender: str, text: str) -> Dict[str, str]:
        """The JSON body of one message."""
        if self.parse_only:
            return {"text": text}
        return {"sender": sender, "message": text}

    def check(self, body: Any) -> Optional[str]:
        """What is wrong with a 200 answer, if anything."""
        if self.parse_only:
            return None if isinstance(body, dict) and "intent" in body else "no intent"
        if not isinstance(body, list) or not body:
            return "empty reply"
        return "apology" if is_apology(body) else None


async def send(
    session: aiohttp.ClientSession, target: Target, sender: str, text: str
) -> Tuple[Sample, List[Dict[str, Any]]]:
    """One request, timed; the sample and the bot's replies."""
    body: Any = None
    error: Optional[str] = None
    started = time.perf_counter()
    try:
        async with session.post(target.url, json=target.payload(sender, text)) as resp:
            if resp.status != 200:
                error = f"http {resp.status}"
            else:
                body = await resp.json(content_type=None)
                error = target.check(body)
    except asyncio.TimeoutError:
        error = "timeout"
    except (aiohttp.ClientError, ValueError) as exception:
        error = type(exception).__name__
    elapsed = (time.perf_counter() - started) * 1000
    return Sample(elapsed, error), body if isinstance(body, list) else []


class Budget:
    """Messages left at a level (one event loop: no lock needed)."""

    def __init__(self, messages: int) -> None:
        self.left = messages

    def take(self) -> bool:
        """One message more, if the budget allows it."""
        if self.left <= 0:
            return False
        self.left -= 1
        return True


class Plan:
    """Hands out conversations: a new sender each, and what its user says."""

    def __init__(self, senders: Iterator[str], script: Callable[[int], NextText]):
        self.senders = senders
        self.script = script
        self.started = 0

    def next(self) -> Tuple[str, NextText]:
        """The sender and the script of the next conversation."""
        index, self.started = self.started, self.started + 1
        return next(self.senders), self.script(index)


def walk_script() -> Callable[[int], NextText]:
    """Our bot: open with the complaint, then answer the bot's last question."""
    questions = question_texts()

    def start(_index: int) -> NextText:
        def next_text(turn: int, replies: List[Dict[str, Any]]) -> Optional[str]:
            return OPENING if turn == 0 else next_answer(replies, questions)

        return next_text

    return start


def replay_script(conversations: Sequence[List[str]]) -> Callable[[int], NextText]:
    """For nlu and bare: the texts of recorded conversations, in turn."""

    def start(index: int) -> NextText:
        texts = conversations[index % len(conversations)]
        return lambda turn, _replies: texts[turn] if turn < len(texts) else None

    return start


async def converse(
    session: aiohttp.ClientSession,
    target: Target,
    plan: Plan,
    budget: Budget,
    samples: List[Sample],
) -> List[str]:
    """One conversation until it ends, fails or the budget is spent; texts sent."""
    sender, next_text = plan.next()
    sent: List[str] = []
    replies: List[Dict[str, Any]] = []
    for turn in range(MAX_MESSAGES):
        text = next_text(turn, replies)
        if text is None or not budget.take():
            break
        sample, replies = await send(session, target, sender, text)
        samples.append(sample)
        sent.append(text)
        if sample.error:
            break
    return sent


async def run_level(
    target: Target, plan: Plan, users: int, messages: int
) -> Tuple[List[Sample], List[List[str]], float]:
    """``users`` concurrent users until ``messages`` are sent.

    Returns the samples, the texts of each conversation and the wall time (s).
    """
    budget = Budget(messages)
    samples: List[Sample] = []
    conversations: List[List[str]] = []
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=users)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def user() -> None:
            while budget.left > 0:
                sent = await converse(session, target, plan, budget, samples)
                if not sent:  # the budget ran out before it began
                    return
                conversations.append(sent)

        started = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(users)))
        wall_s = time.perf_counter() - started
    return samples, conversations, wall_s


def summarise(
    system: str,
    users: int,
    samples: List[Sample],
    conversations: int,
    wall_s: float,
    calls: Optional[int] = None,
) -> LevelStats:
    """Percentiles, errors and throughput of one level."""
    latencies = [sample.ms for sample in samples] or [0.0]
    kinds = Counter(sample.error for sample in samples if sample.error)
    answered = len(samples) - sum(kinds.values())
    return LevelStats(
        system=system,
        users=users,
        messages=len(samples),
        errors=sum(kinds.values()),
        p50_ms=round(percentile(latencies, 0.50), 1),
        p95_ms=round(percentile(latencies, 0.95), 1),
        p99_ms=round(percentile(latencies, 0.99), 1),
        msgs_per_s=round(answered / wall_s, 2) if wall_s else 0.0,
        wall_s=round(wall_s, 1),
        conversations=conversations,
        error_kinds=dict(kinds),
        actions_per_turn=(
            round(calls / len(samples), 2) if calls is not None and samples else None
        ),
    )


def measure(target: Target, plan: Plan, options: Options, report: Report) -> None:
    """Warm up, then every load level in turn; adds the rows to the report."""
    asyncio.run(run_level(target, plan, WARMUP_USERS, options.warmup_messages))
    for users in options.levels:
        budget = options.budget(users)
        print(f"  {target.name}: {users} users, {budget} messages", flush=True)
        before = target.calls() if target.calls else None
        samples, conversations, wall_s = asyncio.run(
            run_level(target, plan, users, budget)
        )
        calls = target.calls() - before if target.calls and before is not None else None
        if target.name in REFERENCES:
            calls = 0  # no custom actions, no action server
        stats = summarise(
            target.name, users, samples, len(conversations), wall_s, calls
        )
        report.levels.append(stats)
        if not target.parse_only and target.name not in REFERENCES:
            report.recorded.extend(conversations)
        if stats.errors:
            print(f"    errors: {stats.error_kinds}", flush=True)


# --- the systems -------------------------------------------------------------


# The fixtures whose conversations are walked one message at a time to count
# the actions per kind of turn: one cause, several causes, none in the store.
COST_FIXTURES = ("demo_account_frozen", "demo_multi_credit")
ANONYMOUS_SENDER = "bench_visitor_cost"


def cost_senders(ids: Sequence[str]) -> List[str]:
    """Bench accounts of COST_FIXTURES (their last copies), then an anonymous user."""
    picked = [
        next(i for i in reversed(ids) if i.endswith(f"_{fixture}"))
        for fixture in COST_FIXTURES
    ]
    return [*picked, ANONYMOUS_SENDER]


def replayed(report: Report) -> List[List[str]]:
    """The texts nlu and bare send: ours recorded in this run, else a default."""
    return report.recorded or [default_script()]


def model_mb(path: Path) -> float:
    """Size of a model file in MB."""
    return round(path.stat().st_size / 1e6, 1)


def recorded_train_s() -> Optional[float]:
    """Seconds of the last `make train`, if it wrote them."""
    try:
        return float(TRAIN_SECONDS.read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Profile:
    """How our bot is started: its name, environment and endpoints file."""

    name: str
    env: Dict[str, str]
    action_port: int
    endpoints: str


def measure_our_bot(
    profile: Profile, logs: Path, options: Options, report: Report
) -> None:
    """Start our action server and Rasa server, measure, stop them."""
    name, env = profile.name, profile.env
    rasa_port = free_port()
    ids = seed_bench_accounts(env["ACCOUNT_DB_URL"], options.conversations_needed())
    actions = rasa = None
    try:
        print(f"== {name}: starting the action server and Rasa", flush=True)
        actions = start_actions(env, profile.action_port, logs / f"{name}-actions.log")
        rasa = start_rasa({**env, **options.rasa_env}, rasa_port,
                          logs / f"{name}-rasa.log", profile.endpoints)  # fmt: skip
        loaded = usage_of(rasa.pid)
        actions_loaded = usage_of(actions.pid)
        base_url = f"http://127.0.0.1:{rasa_port}"
        action_url = f"http://127.0.0.1:{profile.action_port}"
        if name in options.systems:
            plan = Plan(iter(ids), walk_script())
            counted = Target(
                name, base_url, calls=lambda: action_calls(action_url, env)
            )
            measure(counted, plan, options, report)
            bot = Bot(base_url, action_url, env)
            walks = [costed_walk(bot, sender) for sender in cost_senders(ids)]
            report.turns[name] = [turn for turns in walks for turn in turns]
        if name == "embedded" and "nlu" in options.systems:
            plan = Plan(itertools.repeat("nlu"), replay_script(replayed(report)))
            measure(Target("nlu", base_url, parse_only=True), plan, options, report)
        report.resources.append(
            server_resources(name, (rasa.pid, loaded),
                             (actions.pid, actions_loaded), MODEL, recorded_train_s())
        )  # fmt: skip
    finally:
        stop(rasa)
        stop(actions)


def run_embedded(options: Options, logs: Path, report: Report) -> None:
    """The embedded profile (and nlu on its server) in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="jiebei-bench-") as folder:
        action_port = free_port()
        env = base_env(Path(folder), action_port)
        seed_accounts(env)
        profile = Profile("embedded", env, action_port, "endpoints.yml")
        measure_our_bot(profile, logs, options, report)


def run_prod(options: Options, logs: Path, report: Report, name: str) -> None:
    """The production profile on fresh databases and a fresh Redis key prefix.

    With the Sanic workers of system ``name`` (PROD_WORKERS).
    """
    suffix = uuid.uuid4().hex[:8]
    tracker_db = f"jiebei_bench_tracker_{suffix}"  # created by Rasa (login_db)
    key_prefix = f"jiebeibench{suffix}"
    with (
        postgres_server() as postgres,
        redis_server() as redis,
        tempfile.TemporaryDirectory(prefix="jiebei-bench-") as folder,
    ):
        accounts_db = postgres.create_database("jiebei_bench_accounts")
        try:
            action_port = free_port()
            env = prod_env(Path(folder), action_port, postgres, redis, tracker_db,
                           accounts_db, key_prefix)  # fmt: skip
            seed_accounts(env)
            env["SANIC_WORKERS"] = str(PROD_WORKERS[name])
            profile = Profile(name, env, action_port, "endpoints.prod.yml")
            measure_our_bot(profile, logs, options, report)
        finally:
            postgres.drop_database(tracker_db)
            postgres.drop_database(accounts_db)
            keys = redis_client.Redis(redis.host, redis.port)
            for key in keys.scan_iter(f"{key_prefix}:*"):
                keys.delete(key)


def server_resources(
    system: str,
    rasa: Tuple[int, Usage],
    actions: Optional[Tuple[int, Usage]],
    model: Path,
    train_s: Optional[float],
) -> Resources:
    """The memory and CPU figures of a system after its run.

    ``rasa`` and ``actions``: each server's pid and its usage once the model
    was loaded.
    """
    rasa_pid, loaded = rasa
    after = usage_of(rasa_pid)
    actions_after = usage_of(actions[0]) if actions else None
    return Resources(
        system=system,
        rasa_rss_mb=after.total_rss_mb,
        actions_rss_mb=actions_after.total_rss_mb if actions_after else None,
        model_mb=model_mb(model),
        train_s=train_s,
        rasa_process_rss_mb=after.rss_mb,
        rasa_footprint_mb=after.footprint_mb,
        rasa_loaded_mb=loaded.footprint_mb,
        rasa_cpu_s=round(after.cpu_s - loaded.cpu_s, 1),
        rasa_process_cpu_s=[
            round(end - start, 1)
            # a worker that died is left out
            for end, start in zip(
                after.process_cpu_s, loaded.process_cpu_s, strict=False
            )
        ],
        actions_cpu_s=(
            round(actions_after.cpu_s - actions[1].cpu_s, 1)
            if actions and actions_after
            else None
        ),
    )


def run_bare(options: Options, logs: Path, report: Report, name: str = "bare") -> None:
    """Train a bare project, serve it, replay our conversations to it."""
    default = name == "rasa-default"
    with tempfile.TemporaryDirectory(prefix=f"jiebei-bench-{name}-") as folder:
        how = "Rasa's default configuration" if default else "config.yml"
        print(f"== {name}: training the bare project with {how}", flush=True)
        bare: BareModel = train_bare(
            Path(folder), logs / f"{name}-train.log", rasa_default=default
        )
        print(f"   trained in {bare.train_s} s", flush=True)
        port = free_port()
        process = None
        try:
            process = start_bare_rasa(bare, port, logs / f"{name}-rasa.log",
                                      options.bare_env)  # fmt: skip
            loaded = usage_of(process.pid)
            senders = (f"bench_{name}_{n}" for n in itertools.count())
            plan = Plan(senders, replay_script(replayed(report)))
            measure(Target(name, f"http://127.0.0.1:{port}"), plan, options, report)
            report.resources.append(
                server_resources(name, (process.pid, loaded), None, bare.model,
                                 bare.train_s)
            )  # fmt: skip
        finally:
            stop(process)


# --- output --------------------------------------------------------------------


def level_table(report: Report) -> str:
    """Rows per system and level."""
    headers = ["system", "users", "messages", "errors", "p50 ms", "p95 ms",
               "p99 ms", "msgs/s", "actions/turn"]  # fmt: skip
    rows = [
        [s.system, s.users, s.messages, s.errors, s.p50_ms, s.p95_ms, s.p99_ms,
         s.msgs_per_s, "-" if s.actions_per_turn is None else s.actions_per_turn]
        for s in report.levels
    ]  # fmt: skip
    return tabulate(rows, headers, floatfmt=".1f")


def turn_cost(report: Report) -> List[Dict[str, Any]]:
    """Mean action calls and predictions per kind of turn and overall, per system."""
    rows: List[Dict[str, Any]] = []
    for system, turns in report.turns.items():
        kinds = dict.fromkeys(turn.kind for turn in turns)
        groups = [(kind, [t for t in turns if t.kind == kind]) for kind in kinds]
        for kind, group in [*groups, ("all turns", turns)] if turns else []:
            rows.append({
                "system": system,
                "turn": kind,
                "turns": len(group),
                "actions_per_turn": round(
                    sum(t.action_calls for t in group) / len(group), 2),
                "predictions_per_turn": round(
                    sum(t.predictions for t in group) / len(group), 2),
            })  # fmt: skip
    return rows


def turn_table(rows: List[Dict[str, Any]]) -> str:
    """Actions per user turn, by kind of turn (the walked conversations)."""
    headers = ["system", "turn", "turns", "actions/turn", "predictions/turn"]
    keys = ["system", "turn", "turns", "actions_per_turn", "predictions_per_turn"]
    return tabulate([[row[k] for k in keys] for row in rows], headers,
                    floatfmt=".2f")  # fmt: skip


def stats_at(report: Report, system: str, users: int) -> Optional[LevelStats]:
    """The row of one system at one level, if measured."""
    found = [s for s in report.levels if s.system == system and s.users == users]
    return found[0] if found else None


def ratio_check(
    report: Report, system: str, users: int, reference: str = "bare"
) -> Dict[str, Any]:
    """p95 of a system over a reference bot's p95 at ``users``."""
    ours, bare = stats_at(report, system, users), stats_at(report, reference, users)
    check: Dict[str, Any] = {"check": f"p95 {system} / {reference}", "users": users,
                             "target": f"<= {TARGET_RATIO}"}  # fmt: skip
    if ours is None or bare is None or not bare.p95_ms:
        return {**check, "measured": None, "result": "not measured"}
    ratio = round(ours.p95_ms / bare.p95_ms, 2)
    measured = f"{ratio} ({ours.p95_ms:.0f} / {bare.p95_ms:.0f} ms)"
    if system == "nlu":  # the floor: for reading, no target
        return {**check, "measured": measured, "ratio": ratio, "target": "-",
                "result": "-"}  # fmt: skip
    if users != RATIO_USERS:
        result = f"n/a (target is at {RATIO_USERS} users)"
    else:
        result = "PASS" if ratio <= TARGET_RATIO else "MISS"
    return {**check, "measured": measured, "ratio": ratio, "result": result}


def error_check(report: Report, system: str, users: int) -> Dict[str, Any]:
    """Errors of a system at ``users`` (target: none)."""
    stats = stats_at(report, system, users)
    check: Dict[str, Any] = {"check": f"errors {system}", "users": users,
                             "target": "0"}  # fmt: skip
    if stats is None:
        return {**check, "measured": None, "result": "not measured"}
    measured = f"{stats.errors} of {stats.messages}"
    if users != ZERO_ERROR_USERS:
        result = f"n/a (target is at {ZERO_ERROR_USERS} users)"
    else:
        result = "PASS" if stats.errors == 0 else "MISS"
    return {**check, "measured": measured, "errors": stats.errors, "result": result}


def checks(report: Report, levels: Sequence[int]) -> List[Dict[str, Any]]:
    """The issue's targets, at their levels (or the nearest level run)."""
    ratio_users = RATIO_USERS if RATIO_USERS in levels else max(levels)
    error_users = ZERO_ERROR_USERS if ZERO_ERROR_USERS in levels else max(levels)
    return [
        *(
            ratio_check(report, s, ratio_users, reference)
            for reference in REFERENCES
            for s in ("embedded", "prod", "nlu")
        ),
        *(error_check(report, s, error_users) for s in ("embedded", "prod")),
    ]


def check_table(rows: List[Dict[str, Any]]) -> str:
    """The targets and how this run did against them."""
    headers = ["check", "users", "measured", "target", "result"]
    return tabulate([[row[h] if row[h] is not None else "-" for h in headers]
                     for row in rows], headers)  # fmt: skip


# --- scale and memory: issue 12, items 3 and 4 -------------------------------


def throughput_check(
    report: Report, system: str, users: int, reference: str = "bare"
) -> Dict[str, Any]:
    """msgs/s of a production system over a reference bot's at ``users``."""
    ours, bare = stats_at(report, system, users), stats_at(report, reference, users)
    check: Dict[str, Any] = {"check": f"msgs/s {system} / {reference}", "users": users,
                             "target": f">= {THROUGHPUT_RATIO}"}  # fmt: skip
    if ours is None or bare is None or not bare.msgs_per_s:
        return {**check, "measured": None, "result": "not measured"}
    ratio = round(ours.msgs_per_s / bare.msgs_per_s, 2)
    measured = f"{ratio} ({ours.msgs_per_s:.1f} / {bare.msgs_per_s:.1f})"
    if users != THROUGHPUT_USERS:
        result = f"n/a (target is at {THROUGHPUT_USERS} users)"
    else:
        result = "PASS" if ratio >= THROUGHPUT_RATIO else "MISS"
    return {**check, "measured": measured, "ratio": ratio, "result": result}


def memory_check(
    report: Report, system: str, reference: str = "bare"
) -> Dict[str, Any]:
    """The Rasa server's RSS after the run over bare's.

    The target is for one process against one; a server with workers holds
    a model per worker, so its ratio (of its footprint) is for reading.
    """
    found = {r.system: r for r in report.resources}
    ours, bare = found.get(system), found.get(reference)
    workers = PROD_WORKERS.get(system, 1)
    check: Dict[str, Any] = {"check": f"Rasa RSS {system} / {reference}", "users": None,
                             "target": f"<= {MEMORY_RATIO}"}  # fmt: skip
    if ours is None or bare is None or not bare.rasa_rss_mb:
        return {**check, "measured": None, "result": "not measured"}
    if workers > 1:
        total = ours.rasa_footprint_mb or 0.0
        ratio = round(total / bare.rasa_rss_mb, 2)
        measured = f"{ratio} ({workers} workers {total:.0f} / {bare.rasa_rss_mb:.0f})"
        return {**check, "measured": measured, "ratio": ratio, "target": "-",
                "result": "-"}  # fmt: skip
    ratio = round(ours.rasa_rss_mb / bare.rasa_rss_mb, 2)
    measured = f"{ratio} ({ours.rasa_rss_mb:.0f} / {bare.rasa_rss_mb:.0f} MB)"
    result = "PASS" if ratio <= MEMORY_RATIO else "MISS"
    return {**check, "measured": measured, "ratio": ratio, "result": result}


def scale_checks(report: Report, levels: Sequence[int]) -> List[Dict[str, Any]]:
    """The production systems: throughput, errors, memory; p95 of prod2."""
    users = THROUGHPUT_USERS if THROUGHPUT_USERS in levels else max(levels)
    error_users = ZERO_ERROR_USERS if ZERO_ERROR_USERS in levels else max(levels)
    ratio_users = RATIO_USERS if RATIO_USERS in levels else max(levels)
    prod = list(PROD_WORKERS)
    return [
        *(
            ratio_check(report, system, ratio_users, reference)
            for reference in REFERENCES
            for system in prod[1:]
        ),
        *(
            throughput_check(report, system, users, reference)
            for reference in REFERENCES
            for system in prod
        ),
        *(error_check(report, system, error_users) for system in prod[1:]),
        *(
            memory_check(report, system, reference)
            for reference in REFERENCES
            for system in ("embedded", *prod)
        ),
    ]


def resource_table(report: Report, warmup_messages: int) -> str:
    """Memory, CPU, model size and training time per system."""
    headers = ["system", "Rasa MB loaded", "Rasa MB after", "per process RSS MB",
               "action server RSS MB", "CPU ms/msg Rasa + actions", "model MB",
               "last make train s"]  # fmt: skip
    rows = [
        [r.system, r.rasa_loaded_mb, r.rasa_footprint_mb, per_process(r),
         "-" if r.actions_rss_mb is None else r.actions_rss_mb,
         cpu_per_message(report, r, warmup_messages), r.model_mb,
         "not recorded" if r.train_s is None else r.train_s]
        for r in report.resources
    ]  # fmt: skip
    return tabulate(rows, headers, floatfmt=".1f")


def cpu_per_message(report: Report, resources: Resources, warmup: int) -> str:
    """CPU milliseconds per message sent to the system: Rasa + action server.

    The messages of the warm-up, the levels and the walked conversations.
    """
    levels = [s for s in report.levels if s.system == resources.system]
    walked = len(report.turns.get(resources.system, []))
    sent = warmup + sum(s.messages for s in levels) + walked
    if resources.rasa_cpu_s is None or not sent:
        return "-"
    rasa = 1000 * resources.rasa_cpu_s / sent
    actions = 1000 * (resources.actions_cpu_s or 0.0) / sent
    return f"{rasa:.0f} + {actions:.0f}"


def per_process(resources: Resources) -> str:
    """The RSS of each process, with the workers' CPU seconds of the run.

    ``main 650 + workers 820 (61 s), 821 (59 s)``; one process: its RSS.
    """
    sizes = [f"{mb:.0f}" for mb in resources.rasa_process_rss_mb]
    if len(sizes) < 2:
        return sizes[0] if sizes else "-"
    cpu = [f" ({s:.0f} s)" for s in resources.rasa_process_cpu_s[1:]]
    workers = [
        size + (cpu[i] if i < len(cpu) else "") for i, size in enumerate(sizes[1:])
    ]
    return f"main {sizes[0]} + workers {', '.join(workers)}"


def plot(report: Report, levels: Sequence[int], path: Path) -> None:
    """Latency p50/p95 and throughput against users, one line per system."""
    # matplotlib 3.5 calls pyparsing APIs that newer pyparsing deprecates loudly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _draw(report, levels, path)


def _draw(report: Report, levels: Sequence[int], path: Path) -> None:
    import matplotlib  # type: ignore[import-untyped]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-untyped]

    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(12, 4.5))
    for system in dict.fromkeys(s.system for s in report.levels):
        rows = [s for s in report.levels if s.system == system]
        users = [s.users for s in rows]
        (line,) = latency.plot(users, [s.p95_ms for s in rows], marker="o",
                               label=f"{system} p95")  # fmt: skip
        latency.plot(users, [s.p50_ms for s in rows], marker=".", linestyle="--",
                     color=line.get_color(), label=f"{system} p50")  # fmt: skip
        throughput.plot(users, [s.msgs_per_s for s in rows], marker="o",
                        color=line.get_color(), label=system)  # fmt: skip
    latency.set_yscale("log")
    latency.set_ylabel("reply latency, ms (log)")
    latency.set_title("latency per message")
    throughput.set_yscale("log")
    throughput.set_ylabel("answered messages / s (log)")
    throughput.set_title("throughput")
    for axis in (latency, throughput):
        axis.set_xscale("log", base=2)
        axis.set_xticks(list(levels), [str(users) for users in levels])
        axis.set_xlabel("concurrent users")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle(f"Jiebei assistant, end-to-end bench ({os.cpu_count()} cores)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_json(
    report: Report,
    options: Options,
    checked: List[Dict[str, Any]],
    path: Path,
) -> None:
    """All numbers of the run, with what was run."""
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rasa": version("rasa"),
        "cpu_count": os.cpu_count(),
        "levels": options.levels,
        "messages_per_level": {str(u): options.budget(u) for u in options.levels},
        "warmup_messages": options.warmup_messages,
        "max_messages_per_conversation": MAX_MESSAGES,
        "request_timeout_s": REQUEST_TIMEOUT_S,
        "systems": options.systems,
        "replayed_conversations": len(replayed(report)),
        "replay_source": "recorded" if report.recorded else "default script",
        "load_average_at_start": report.load_average,
        "rasa_env": options.rasa_env,
        "bare_env": options.bare_env,
    }
    content = {
        "meta": meta,
        "latency": [asdict(s) for s in report.levels],
        "checks": checked,
        "resources": [asdict(r) for r in report.resources],
        "actions_per_turn": turn_cost(report),
    }
    path.write_text(
        json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


# --- command line ------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> Options:
    """Options from the command line (``--quick``: small defaults)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", help="concurrent users per level (1,8,32)")
    parser.add_argument("--messages-per-user", type=int,
                        help="messages per user at each level (40)")  # fmt: skip
    parser.add_argument("--min-messages", type=int,
                        help="least messages at any level (120)")  # fmt: skip
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help="which of embedded,prod,prod2,nlu,bare (all)")  # fmt: skip
    parser.add_argument("--rasa-env", default="",
                        help="NAME=VALUE,... for our Rasa servers")  # fmt: skip
    parser.add_argument("--bare-env", default="",
                        help="NAME=VALUE,... for the bare Rasa server")  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--quick", action="store_true",
                        help="levels 1,2 and a few messages (development)")  # fmt: skip
    args = parser.parse_args(argv)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown or not systems:
        parser.error(f"--systems takes {','.join(SYSTEMS)}, got {args.systems!r}")
    levels_text = args.levels or ("1,2" if args.quick else "1,8,32")
    levels = sorted({int(level) for level in levels_text.split(",")})
    if levels[0] < 1:
        parser.error("--levels must be positive")
    try:
        rasa_env, bare_env = env_pairs(args.rasa_env), env_pairs(args.bare_env)
    except ValueError as error:
        parser.error(str(error))
    return Options(
        levels=levels,
        messages_per_user=args.messages_per_user or (4 if args.quick else 40),
        min_messages=args.min_messages or (8 if args.quick else 120),
        warmup_messages=3 if args.quick else 10,
        systems=[s for s in SYSTEMS if s in systems],
        out=args.out,
        rasa_env=rasa_env,
        bare_env=bare_env,
    )


def env_pairs(text: str) -> Dict[str, str]:
    """``NAME=VALUE,NAME=VALUE`` as a dictionary."""
    pairs: Dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, separator, value = item.partition("=")
        if not separator or not name.strip():
            raise ValueError(f"--rasa-env/--bare-env take NAME=VALUE, got {item!r}")
        pairs[name.strip()] = value.strip()
    return pairs


def log_folder(out: Path) -> Path:
    """results/bench_e2e_logs, emptied: the servers' logs of this run."""
    logs = out / "bench_e2e_logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    return logs


def main(argv: Sequence[str]) -> int:
    """Measure the chosen systems one after another, then report."""
    options = parse_args(argv)
    if not MODEL.exists():
        print(f"no trained model at {MODEL}: run `make train` first", file=sys.stderr)
        return 2
    logs = log_folder(options.out)
    report = Report(load_average=[round(load, 2) for load in os.getloadavg()])
    print(f"load average at start (1, 5, 15 min): {report.load_average}", flush=True)
    if {"embedded", "nlu"} & set(options.systems):
        run_embedded(options, logs, report)
    for name in PROD_WORKERS:
        if name in options.systems:
            run_prod(options, logs, report, name)
    for name in REFERENCES:
        if name in options.systems:
            run_bare(options, logs, report, name)

    checked = checks(report, options.levels) + scale_checks(report, options.levels)
    print("\n" + level_table(report))
    print("\n" + check_table(checked))
    print("\n" + resource_table(report, options.warmup_messages))
    if report.turns:
        print("\nactions per user turn (conversations walked one message at a time)")
        print(turn_table(turn_cost(report)))
    write_json(report, options, checked, options.out / "bench_e2e.json")
    plot(report, options.levels, options.out / "bench_e2e.png")
    print(f"\nwrote {options.out / 'bench_e2e.json'}, {options.out / 'bench_e2e.png'}"
          f" (server logs: {logs})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
