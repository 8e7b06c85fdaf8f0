"""`make bench-stats`: the insights figures over 100,000 generated conversations.

Generates conversations as Rasa's tracker store holds them (its own
SQLTrackerStore creates the ``events`` table; the rows have the JSON shapes of
Rasa's events: session start, user messages with the NLU's parse, actions,
slots, bot messages, "did you mean" after a fallback) and the case store's
rows (outcomes with causes and ratings, handoff cases with their status and
first agent replies), spread over the last 90 days, into SQLite files and a
throwaway PostgreSQL database (devtools/servers.py). Then times
``insights.stats.stats`` over the last 30 and 90 days (median of a few runs;
the first call, which builds the indexes, is reported apart), with and without
a channel filter, and the review queue. Target (issue 14): under 1 s.

    python -m scripts.bench_stats [--conversations 100000] [--runs 5]
        [--systems sqlite,postgresql] [--out results/bench_stats.json]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import sqlalchemy as sa

from actions.services.cases import cases_table, outcomes_table, status_table
from devtools.project import ROOT
from devtools.servers import postgres_server
from insights.review import review_queue
from insights.rollup import first_open_day, roll_up_day
from insights.stats import stats
from insights.stores import Stores, day_intents_table, day_senders_table, days_table

DAYS = 90
CHANNELS = (("socketio", 0.6), ("rest", 0.2), ("wecom", 0.1), ("wechat_mp", 0.1))
KINDS = (("resolved", 0.45), ("handoff", 0.15), ("abandoned", 0.15), ("faq", 0.25))
INTENTS = (
    "jiebei_entry_missing",
    "jiebei_cannot_open",
    "jiebei_closed",
    "jiebei_cannot_borrow",
    "jiebei_quota",
    "faq",
    "greet",
    "goodbye",
    "thank",
    "affirm",
    "deny",
    "inform",
    "request_human",
    "bot_challenge",
    "report_scam",
    "out_of_scope",
)
FAQS = (
    "faq/jiebei_repayment",
    "faq/jiebei_interest",
    "faq/jiebei_overdue",
    "faq/jiebei_term",
    "faq/credit_score",
)
CAUSES = (
    "account_frozen",
    "overdue",
    "age_out_of_range",
    "region_not_supported",
    "low_sesame_score",
    "identity_unverified",
    "switched_to_wangshangdai",
)
OPENINGS = (
    "借呗不见了",
    "借呗入口没了",
    "我的借呗怎么没有了",
    "借呗打不开",
    "借呗额度没了",
)
FALLBACK_RATE = 0.08
RATED = 0.6
BENCH_ACCOUNT_SLOTS = ("account_id", "facts_source", "findings", "current_finding")


@dataclass
class Generated:
    """Rows for the two stores."""

    events: List[Tuple[str, str, float, Optional[str], Optional[str], str]]
    outcomes: List[Dict[str, Any]]
    cases: List[Dict[str, Any]]
    status: List[Dict[str, Any]]


def _pick(rng: random.Random, weighted: Sequence[Tuple[str, float]]) -> str:
    return rng.choices([w[0] for w in weighted], [w[1] for w in weighted])[0]


def _parse(
    rng: random.Random, text: str, intent: str, confidence: float, fallback: bool
) -> Dict[str, Any]:
    """A parse as our NLU pipeline leaves it in a user event."""
    others = rng.sample([i for i in INTENTS if i != intent], 9)
    rest = 1.0 - confidence
    ranking = [{"name": intent, "confidence": confidence}] + [
        {"name": name, "confidence": rest / 9} for name in others
    ]
    parse: Dict[str, Any] = {
        "intent": {"name": intent, "confidence": confidence},
        "entities": [],
        "text": text,
        "message_id": f"{rng.getrandbits(64):016x}",
        "metadata": {},
        "intent_ranking": ranking,
    }
    if intent == "faq":
        key = rng.choice(FAQS)
        parse["response_selector"] = {
            "all_retrieval_intents": ["faq"],
            "faq": {
                "response": {
                    "responses": [{"text": "借呗还款可以这样操作：……"}],
                    "confidence": 0.9,
                    "intent_response_key": key,
                    "utter_action": f"utter_{key}",
                },
                "ranking": [{"confidence": 0.9, "intent_response_key": key}],
            },
        }
    if fallback:
        parse["intent"] = {"name": "nlu_fallback", "confidence": 0.82}
        parse["intent_ranking"] = [
            {"name": "nlu_fallback", "confidence": 0.82},
            *ranking,
        ]
    return parse


class Writer:
    """Events of one conversation, in Rasa's JSON shapes."""

    def __init__(self, rng: random.Random, sender: str, start: float, channel: str):
        self.rng, self.sender, self.t, self.channel = rng, sender, start, channel
        self.rows: List[Tuple[str, str, float, Optional[str], Optional[str], str]] = []

    def _add(self, event: Dict[str, Any], intent: Optional[str] = None) -> None:
        event["timestamp"] = self.t
        action = event.get("name") if event["event"] == "action" else None
        self.rows.append(
            (
                self.sender,
                event["event"],
                self.t,
                intent,
                action,
                json.dumps(event, ensure_ascii=False),
            )
        )
        self.t += self.rng.uniform(0.05, 0.4)

    def action(self, name: str) -> None:
        """An action run (ActionExecuted)."""
        self._add(
            {
                "event": "action",
                "name": name,
                "policy": "RulePolicy",
                "confidence": 1.0,
                "action_text": None,
                "hide_rule_turn": False,
            }
        )

    def session(self) -> None:
        """The start of a session, as Rasa writes it."""
        self.action("action_session_start")
        self._add({"event": "session_started"})
        self.action("action_listen")

    def user(
        self, text: str, intent: str, confidence: float, fallback: bool = False
    ) -> None:
        """A user message (UserUttered with its parse)."""
        self.t += self.rng.uniform(5, 60)
        parse = _parse(self.rng, text, intent, confidence, fallback)
        self._add(
            {
                "event": "user",
                "text": text,
                "parse_data": parse,
                "input_channel": self.channel,
                "message_id": parse["message_id"],
                "metadata": {},
            },
            parse["intent"]["name"],
        )

    def bot(self, text: str, response: str) -> None:
        """A bot message (BotUttered)."""
        self._add(
            {
                "event": "bot",
                "metadata": {"utter_action": response},
                "text": text,
                "data": {
                    "elements": None,
                    "quick_replies": None,
                    "buttons": None,
                    "attachment": None,
                    "image": None,
                    "custom": None,
                },
            }
        )

    def slot(self, name: str, value: Any) -> None:
        """A slot set (SlotSet)."""
        self._add({"event": "slot", "name": name, "value": value})

    def turn(
        self, text: str, intent: str, actions: Sequence[str], fallback: bool = False
    ) -> None:
        """A user message and the bot's answer."""
        self.user(text, intent, self.rng.uniform(0.83, 0.99), fallback)
        if fallback:
            self.action("action_clarify_intent")
            self.bot("您是想问下面哪个问题？", "utter_clarify")
            self.action("action_listen")
            return
        for name in actions:
            self.action(name)
        self.slot(self.rng.choice(BENCH_ACCOUNT_SLOTS), "demo")
        self.bot("好的，我来帮您看看。", "utter_step")
        self.action("action_listen")


def generate(conversations: int, today: date, seed: int = 14) -> Generated:
    """The conversations, spread over the last DAYS days."""
    rng = random.Random(seed)
    end = datetime.combine(today, datetime.min.time(), tzinfo=timezone.utc)
    span = DAYS * 86400
    out = Generated([], [], [], [])
    for number in range(conversations):
        sender = f"bench_{number:07d}"
        start = end.timestamp() - rng.uniform(0, span)
        channel = _pick(rng, CHANNELS)
        kind = _pick(rng, KINDS)
        write = Writer(rng, sender, start, channel)
        write.session()
        fallback = rng.random() < FALLBACK_RATE
        opening = rng.choice(OPENINGS)
        if kind == "faq":
            write.turn("借呗怎么还款", "faq", ["utter_faq"], fallback)
            if rng.random() < 0.5:
                write.turn("谢谢", "thank", ["utter_thank"])
            out.events.extend(write.rows)
            continue
        write.turn(opening, "jiebei_entry_missing", ["action_diagnose"], fallback)
        causes = rng.sample(CAUSES, rng.choice((1, 1, 1, 2)))
        for _ in range(rng.randint(1, 3)):
            write.turn("是的", "affirm", ["action_diagnose"])
        outcome = {
            "resolved": "resolved_by_bot",
            "handoff": "handed_off",
            "abandoned": "abandoned",
        }[kind]
        rating = None
        if kind == "handoff":
            failed = rng.random() < 0.5
            write.turn("没做成" if failed else "转人工", "deny", ["action_diagnose"])
            write.turn("转人工", "request_human", ["action_handoff"])
            created = datetime.fromtimestamp(write.t, timezone.utc)
            case_id = f"B{number:011d}"
            scam = rng.random() < 0.05
            steps = [{"code": causes[0], "answer": "cannot" if failed else "done"}]
            out.cases.append(
                {
                    "case_id": case_id,
                    "conversation_id": sender,
                    "summary": json.dumps(
                        {
                            "conversation_id": sender,
                            "account_id": None,
                            "problem": opening,
                            "causes": causes,
                            "steps_tried": steps,
                            "user_words": [opening, "转人工"],
                            "scam_reported": scam,
                            "case_id": case_id,
                        },
                        ensure_ascii=False,
                    ),
                    "created_at": created,
                }
            )
            replied = rng.random() < 0.8
            reply = created + timedelta(seconds=rng.uniform(20, 900))
            out.status.append(
                {
                    "case_id": case_id,
                    "conversation_id": sender,
                    "channel": channel,
                    "status": "resolved" if replied else "waiting",
                    "scam": scam,
                    "agent_id": "agent1" if replied else None,
                    "created_at": created,
                    "claimed_at": reply if replied else None,
                    "first_reply_at": reply if replied else None,
                    "resolved_at": None,
                    "resolution": None,
                    "updated_at": reply if replied else created,
                }
            )
        if kind != "abandoned" and rng.random() < RATED:
            rating = rng.choices((1, 2, 3, 4, 5), (1, 1, 2, 4, 6))[0]
            write.turn(str(rating), "inform", ["action_rating"])
        out.outcomes.append(
            {
                "conversation_id": sender,
                "outcome": outcome,
                "rating": rating,
                "causes": json.dumps(causes),
                "updated_at": datetime.fromtimestamp(write.t, timezone.utc),
            }
        )
        out.events.extend(write.rows)
    # In the order the stores receive them: Rasa appends events as they
    # happen, the case store writes an outcome anew when it changes.
    out.events.sort(key=lambda row: row[2])
    out.outcomes.sort(key=lambda row: row["updated_at"])
    out.cases.sort(key=lambda row: row["created_at"])
    out.status.sort(key=lambda row: row["created_at"])
    return out


def _events_table(url: str) -> None:
    """The events table exactly as Rasa creates it (its own store class)."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    parts = sa.engine.make_url(url)
    if parts.drivername.startswith("sqlite"):
        store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=parts.database)
    else:
        store = SQLTrackerStore(
            Domain.empty(),
            dialect="postgresql",
            host=parts.host,
            port=parts.port,
            db=parts.database,
            username=parts.username,
        )
    store.engine.dispose()


def load(tracker_url: str, case_url: str, rows: Generated) -> None:
    """Write the rows (COPY on PostgreSQL, one transaction on SQLite)."""
    _events_table(tracker_url)
    tracker = sa.create_engine(tracker_url, future=True)
    columns = ("sender_id", "type_name", "timestamp", "intent_name", "action_name")
    if tracker.dialect.name == "postgresql":
        raw = tracker.raw_connection()
        try:
            cursor = raw.cursor()
            for chunk in _chunks(rows.events, 200_000):
                buffer = io.StringIO()
                for row in chunk:
                    buffer.write("\t".join(_copy_field(v) for v in row) + "\n")
                buffer.seek(0)
                cursor.copy_expert(
                    f"COPY events ({', '.join(columns)}, data) FROM STDIN", buffer
                )
            raw.commit()
        finally:
            raw.close()
    else:
        statement = sa.text(
            "INSERT INTO events (sender_id, type_name, timestamp, intent_name, "
            "action_name, data) VALUES (:s, :t, :ts, :i, :a, :d)"
        )
        with tracker.begin() as connection:
            for chunk in _chunks(rows.events, 100_000):
                connection.execute(
                    statement,
                    [
                        {"s": s, "t": t, "ts": ts, "i": i, "a": a, "d": d}
                        for s, t, ts, i, a, d in chunk
                    ],
                )
    with tracker.connect() as connection:
        connection.execute(sa.text("ANALYZE"))
        connection.commit()
    tracker.dispose()
    cases = sa.create_engine(case_url, future=True)
    cases_table.metadata.create_all(cases)
    with cases.begin() as connection:
        connection.execute(outcomes_table.insert(), rows.outcomes)
        connection.execute(cases_table.insert(), rows.cases)
        connection.execute(status_table.insert(), rows.status)
    with cases.connect() as connection:
        connection.execute(sa.text("ANALYZE"))
        connection.commit()
    cases.dispose()


def _copy_field(value: Any) -> str:
    if value is None:
        return "\\N"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _chunks(items: List[Any], size: int) -> Iterator[List[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _timed(work: Any, runs: int) -> Tuple[List[float], Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def _row(system: str, what: str, times: List[float], counted: int) -> Dict[str, Any]:
    return {
        "system": system,
        "what": what,
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1) if len(times) > 1 else None,
        "max_ms": round(max(times), 1) if len(times) > 1 else None,
        "conversations": counted,
    }


def measure(
    system: str, stores: Stores, today: date, runs: int
) -> List[Dict[str, Any]]:
    """Median, min and max of ``runs`` calls per range (and the first call)."""
    month = today - timedelta(days=29)
    times, first = _timed(lambda: stats(stores, month, today), 1)
    results = [
        _row(
            system,
            "first call: builds the indexes, rolls up 90 days",
            times,
            first["counts"]["conversations"],
        )
    ]
    for days, channel in ((30, None), (90, None), (30, "socketio"), (90, "socketio")):
        start = today - timedelta(days=days - 1)
        times, figures = _timed(
            lambda s=start, c=channel: stats(stores, s, today, c), runs
        )
        what = f"stats, {days} days" + (f", channel {channel}" if channel else "")
        results.append(_row(system, what, times, figures["counts"]["conversations"]))
    yesterday = first_open_day() - 1
    with stores.cases.begin() as connection:
        drop_rollups_of(connection, yesterday)
    times, _ = _timed(lambda: roll_up_day(stores, yesterday), 1)
    results.append(_row(system, "rolling up one more day", times, 0))
    for days in (30, 90):
        since = datetime.now(timezone.utc) - timedelta(days=days)
        times, items = _timed(
            lambda s=since: review_queue(stores, 0.82, limit=50, since=s),
            max(1, runs // 2),
        )
        results.append(
            _row(system, f"review queue, {days} days (top 50)", times, len(items))
        )
    return results


def drop_rollups_of(connection: Any, day: int) -> None:
    """Forget one day's rollup (to time rolling it up again)."""
    for table in (days_table, day_senders_table, day_intents_table):
        connection.execute(table.delete().where(table.c.day == day))


def table(results: Sequence[Dict[str, Any]], target_ms: float) -> str:
    """The results as a Markdown table."""
    lines = [
        "| store | what | median ms | min | max | counted | stats under 1 s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results:
        ok = "-"
        if row["what"].startswith("stats"):
            ok = "yes" if row["median_ms"] < target_ms else "NO"
        lines.append(
            f"| {row['system']} | {row['what']} | {row['median_ms']} | "
            f"{row['min_ms'] if row['min_ms'] is not None else '-'} | "
            f"{row['max_ms'] if row['max_ms'] is not None else '-'} | "
            f"{row['conversations']} | {ok} |"
        )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Generate, load, measure, print (--strict: exit 1 over the target)."""
    parser = argparse.ArgumentParser(prog="python -m scripts.bench_stats")
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--systems", default="sqlite,postgresql")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "results" / "bench_stats.json"
    )
    parser.add_argument("--target-ms", type=float, default=1000.0)
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a stats median misses the target (a shared machine's "
        "load can make it: by default the table says so and the run passes)",
    )
    args = parser.parse_args(argv)
    today = datetime.now(timezone.utc).date()
    started = time.perf_counter()
    rows = generate(args.conversations, today)
    print(
        f"generated {args.conversations} conversations: {len(rows.events)} events, "
        f"{len(rows.outcomes)} outcomes, {len(rows.cases)} cases "
        f"({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    results: List[Dict[str, Any]] = []
    systems = [name.strip() for name in args.systems.split(",") if name.strip()]
    if "sqlite" in systems:
        with tempfile.TemporaryDirectory(prefix="bench_stats_") as folder:
            tracker_url = f"sqlite:///{folder}/tracker.db"
            case_url = f"sqlite:///{folder}/cases.db"
            started = time.perf_counter()
            load(tracker_url, case_url, rows)
            print(f"sqlite loaded ({time.perf_counter() - started:.0f} s)", flush=True)
            stores = Stores.from_urls(tracker_url, case_url)
            results += measure("sqlite", stores, today, args.runs)
            stores.tracker.dispose()
            stores.cases.dispose()
    if "postgresql" in systems:
        with postgres_server() as server:
            tracker_db = server.create_database("jiebei_bench_tracker")
            case_db = server.create_database("jiebei_bench_cases")
            try:
                started = time.perf_counter()
                load(server.url(tracker_db), server.url(case_db), rows)
                print(
                    f"postgresql loaded ({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
                stores = Stores.from_urls(server.url(tracker_db), server.url(case_db))
                results += measure("postgresql", stores, today, args.runs)
                stores.tracker.dispose()
                stores.cases.dispose()
            finally:
                server.drop_database(tracker_db)
                server.drop_database(case_db)
    print(table(results, args.target_ms))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "conversations": args.conversations,
                "events": len(rows.events),
                "runs": args.runs,
                "results": results,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    missed = [
        row
        for row in results
        if row["what"].startswith("stats") and row["median_ms"] >= args.target_ms
    ]
    if missed:
        print(
            f"target missed ({args.target_ms:.0f} ms): "
            + "; ".join(f"{row['system']} {row['what']}" for row in missed)
        )
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
