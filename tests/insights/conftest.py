"""Conversations written by Rasa's own SQLTrackerStore (so the events have
Rasa's shapes) and the case store's own calls, on SQLite and on a real
PostgreSQL (the tracker and the cases in two databases, as in production)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    Event,
    SessionStarted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from actions.services.cases import CaseStore, cases_table, outcomes_table, status_table
from devtools.servers import Postgres
from insights.stores import Stores

DOMAIN = Domain.empty()


def moment(text: str) -> datetime:
    """A UTC time from 'YYYY-MM-DD HH:MM:SS'."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def user(
    text: str,
    intent: str,
    confidence: float,
    at: str,
    channel: str = "socketio",
    ranking: Optional[Sequence[tuple[str, float]]] = None,
    faq: Optional[tuple[str, float]] = None,
) -> UserUttered:
    """A user message as the NLU pipeline leaves it in the tracker."""
    ranked = [
        {"name": name, "confidence": value}
        for name, value in (ranking or [(intent, confidence)])
    ]
    parse: Dict[str, Any] = {
        "intent": {"name": intent, "confidence": confidence},
        "entities": [],
        "text": text,
        "intent_ranking": ranked,
    }
    if faq is not None:
        key, value = faq
        parse["response_selector"] = {
            "all_retrieval_intents": ["faq"],
            "faq": {
                "response": {
                    "intent_response_key": key,
                    "confidence": value,
                    "responses": [{"text": "..."}],
                    "utter_action": f"utter_{key}",
                },
                "ranking": [{"intent_response_key": key, "confidence": value}],
            },
        }
    return UserUttered(
        text,
        intent=parse["intent"],
        parse_data=parse,
        timestamp=moment(at).timestamp(),
        input_channel=channel,
    )


def action(name: str, at: str) -> ActionExecuted:
    return ActionExecuted(name, timestamp=moment(at).timestamp())


def bot(text: str, at: str) -> BotUttered:
    return BotUttered(text, timestamp=moment(at).timestamp())


def session(at: str) -> List[Event]:
    t = moment(at).timestamp()
    return [
        ActionExecuted("action_session_start", timestamp=t),
        SessionStarted(timestamp=t),
        ActionExecuted("action_listen", timestamp=t),
    ]


@dataclass
class World:
    """The two stores, written through Rasa and the case store."""

    tracker_url: str
    case_url: str
    tracker_store: SQLTrackerStore
    cases: CaseStore

    @property
    def stores(self) -> Stores:
        return Stores.from_urls(self.tracker_url, self.case_url)

    async def conversation(self, sender: str, events: Sequence[Event]) -> None:
        tracker = DialogueStateTracker.from_events(sender, list(events))
        await self.tracker_store.save(tracker)

    def outcome(
        self,
        conversation: str,
        outcome: str,
        causes: Sequence[str],
        at: str,
        rating: Optional[int] = None,
    ) -> None:
        self.cases.record_outcome(conversation, outcome, causes)
        if rating is not None:
            self.cases.record_rating(conversation, rating)
        self._set(
            outcomes_table.update()
            .where(outcomes_table.c.conversation_id == conversation)
            .values(updated_at=moment(at))
        )

    def case(
        self,
        conversation: str,
        summary: Dict[str, Any],
        at: str,
        first_reply: Optional[str] = None,
        channel: Optional[str] = None,
    ) -> str:
        case_id = self.cases.open_case(conversation, summary, channel=channel)
        self._set(
            cases_table.update()
            .where(cases_table.c.case_id == case_id)
            .values(created_at=moment(at))
        )
        self._set(
            status_table.update()
            .where(status_table.c.case_id == case_id)
            .values(
                created_at=moment(at),
                first_reply_at=moment(first_reply) if first_reply else None,
                updated_at=moment(first_reply or at),
            )
        )
        return case_id

    def _set(self, statement: Any) -> None:
        engine = sa.create_engine(self.case_url, future=True)
        try:
            with engine.begin() as connection:
                connection.execute(statement)
        finally:
            engine.dispose()

    def count(self, url: str, table: str) -> int:
        engine = sa.create_engine(url, future=True)
        try:
            with engine.connect() as connection:
                return int(
                    connection.execute(
                        sa.text(f"SELECT COUNT(*) FROM {table}")
                    ).scalar_one()
                )
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "sqlite":
        tracker_file = tmp_path / "tracker.db"
        store = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tracker_file))
        case_url = f"sqlite:///{tmp_path / 'cases.db'}"
        yield World(f"sqlite:///{tracker_file}", case_url, store, CaseStore(case_url))
        store.engine.dispose()
        return
    postgres: Postgres = request.getfixturevalue("postgres")
    tracker_db = postgres.create_database("jiebei_insights_tracker")
    case_db = postgres.create_database("jiebei_insights_cases")
    try:
        store = SQLTrackerStore(
            DOMAIN,
            dialect="postgresql",
            host=postgres.host,
            port=postgres.port,
            db=tracker_db,
            username=postgres.user,
        )
        yield World(
            postgres.url(tracker_db),
            postgres.url(case_db),
            store,
            CaseStore(postgres.url(case_db)),
        )
        store.engine.dispose()
    finally:
        from insights.stores import engine_for

        for url in (postgres.url(tracker_db), postgres.url(case_db)):
            for timeout in (60.0,):
                engine_for(url, timeout).dispose()
        from actions.services.sql import engine_for as case_engine_for

        case_engine_for(postgres.url(case_db), 2.0).dispose()
        postgres.drop_database(tracker_db)
        postgres.drop_database(case_db)


def summary(
    conversation: str,
    steps: Sequence[Dict[str, Any]] = (),
    scam: bool = False,
    words: Sequence[str] = (),
) -> Dict[str, Any]:
    """A handoff summary as actions/handoff.py writes it."""
    return {
        "conversation_id": conversation,
        "account_id": None,
        "facts_source": None,
        "problem": words[0] if words else None,
        "causes": [],
        "current_cause": None,
        "steps_tried": list(steps),
        "user_words": list(words),
        "scam_reported": scam,
        "created_at": "2026-11-10T10:00:00+00:00",
    }


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


DAY = "2026-11-10"


async def write_scenario(world: World) -> None:
    """Six conversations on 2026-11-10 and one on 2026-10-01 (docs/insights.md
    defines each figure these give):

    A socketio  diagnosis resolved by the bot, rated 5
    B rest      a fix failed, then 转人工: handed off (after a failed fix), rated 2,
                first agent reply after 30 s
    C socketio  diagnosis abandoned
    D socketio  a fallback, "did you mean", then goodbye (no diagnosis)
    E rest      a scam report, then 转人工: handed off (scam), first reply after 90 s
    F socketio  asks for a person at once: handed off (requested), no reply yet
    G socketio  2026-10-01: resolved, rated 1 (outside the day's range)
    """
    d = DAY
    await world.conversation(
        "conv_a",
        [
            *session(f"{d} 09:00:00"),
            user("借呗不见了", "jiebei_entry_missing", 0.95, f"{d} 09:00:01"),
            action("action_diagnose", f"{d} 09:00:02"),
            bot("您的账户被冻结了……完成了吗？", f"{d} 09:00:02"),
            action("action_listen", f"{d} 09:00:02"),
            user("完成了", "affirm", 0.97, f"{d} 09:01:00"),
            action("action_diagnose", f"{d} 09:01:01"),
            bot("请给这次服务打分", f"{d} 09:01:01"),
            action("action_listen", f"{d} 09:01:01"),
        ],
    )
    world.outcome("conv_a", "resolved_by_bot", ["account_frozen"], f"{d} 09:02:00", 5)

    await world.conversation(
        "conv_b",
        [
            *session(f"{d} 10:00:00"),
            user("借呗入口没了", "jiebei_entry_missing", 0.93, f"{d} 10:00:00", "rest"),
            action("action_diagnose", f"{d} 10:00:01"),
            user("没做成", "deny", 0.9, f"{d} 10:01:00", "rest"),
            action("action_diagnose", f"{d} 10:01:01"),
            user("转人工", "request_human", 0.99, f"{d} 10:02:00", "rest"),
            action("action_handoff", f"{d} 10:02:01"),
        ],
    )
    world.outcome(
        "conv_b", "handed_off", ["account_frozen", "overdue"], f"{d} 10:03:00", 2
    )
    world.case(
        "conv_b",
        summary(
            "conv_b",
            steps=[{"code": "account_frozen", "answer": "cannot", "recheck": None}],
            words=["借呗入口没了", "没做成", "转人工"],
        ),
        f"{d} 10:02:30",
        first_reply=f"{d} 10:03:00",
        channel="rest",
    )

    await world.conversation(
        "conv_c",
        [
            *session(f"{d} 11:00:00"),
            user("借呗没有了", "jiebei_entry_missing", 0.9, f"{d} 11:00:00"),
            action("action_diagnose", f"{d} 11:00:01"),
        ],
    )
    world.outcome("conv_c", "abandoned", [], f"{d} 11:00:05")

    await world.conversation(
        "conv_d",
        [
            *session(f"{d} 12:00:00"),
            user(
                "借呗额度咋整",
                "nlu_fallback",
                0.82,
                f"{d} 12:00:00",
                ranking=[
                    ("nlu_fallback", 0.82),
                    ("jiebei_quota", 0.55),
                    ("faq", 0.3),
                ],
            ),
            action("action_clarify_intent", f"{d} 12:00:01"),
            bot("您是想问……", f"{d} 12:00:01"),
            action("action_listen", f"{d} 12:00:01"),
            user("算了", "goodbye", 0.9, f"{d} 12:01:00"),
        ],
    )

    await world.conversation(
        "conv_e",
        [
            *session(f"{d} 13:00:00"),
            user(
                "有人说能帮我提额要验证码", "report_scam", 0.88, f"{d} 13:00:00", "rest"
            ),
            action("action_scam_warning", f"{d} 13:00:01"),
            user("转人工", "request_human", 0.99, f"{d} 13:01:00", "rest"),
            action("action_handoff", f"{d} 13:01:01"),
        ],
    )
    world.outcome("conv_e", "handed_off", [], f"{d} 13:01:10")
    world.case(
        "conv_e",
        summary("conv_e", scam=True, words=["有人说能帮我提额要验证码", "转人工"]),
        f"{d} 13:01:10",
        first_reply=f"{d} 13:02:40",
        channel="rest",
    )

    await world.conversation(
        "conv_f",
        [
            *session(f"{d} 14:00:00"),
            user("我要找人工", "request_human", 0.9, f"{d} 14:00:00"),
            action("action_handoff", f"{d} 14:00:01"),
        ],
    )
    world.outcome("conv_f", "handed_off", [], f"{d} 14:00:05")
    world.case("conv_f", summary("conv_f", words=["我要找人工"]), f"{d} 14:00:05")

    await world.conversation(
        "conv_g",
        [
            *session("2026-10-01 08:00:00"),
            user("借呗不见了", "jiebei_entry_missing", 0.95, "2026-10-01 08:00:01"),
            action("action_diagnose", "2026-10-01 08:00:02"),
        ],
    )
    world.outcome(
        "conv_g", "resolved_by_bot", ["account_frozen"], "2026-10-01 08:05:00", 1
    )


def cli_env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point python -m insights at the world's stores, as a deployment would."""
    tracker = sa.engine.make_url(world.tracker_url)
    for name in ("TRACKER_DB_HOST", "TRACKER_DB_PATH", "CASE_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    if tracker.drivername.startswith("postgresql"):
        monkeypatch.setenv("TRACKER_DB_HOST", str(tracker.host))
        monkeypatch.setenv("TRACKER_DB_PORT", str(tracker.port))
        monkeypatch.setenv("TRACKER_DB_NAME", str(tracker.database))
        monkeypatch.setenv("TRACKER_DB_USER", str(tracker.username))
    else:
        monkeypatch.setenv("TRACKER_DB_PATH", str(tracker.database))
    monkeypatch.setenv("CASE_DB_URL", world.case_url)
