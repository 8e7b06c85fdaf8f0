"""End to end: the bad-input corpus and the rate limit against the real servers.

One bot for the module (a start costs about 40 s): the Rasa server and the
action server, both connectors configured against the fake platform API,
``RATE_LIMIT=20/minute``. Each corpus case (devtools/bad_input.py) must get
its expected answer within a bound against hangs (30 s, not a benchmark).
After the whole corpus the bot still answers a new user normally and its log
holds no traceback and no 500.

The corpus-shape test needs no bot and runs in ``make pytest`` too.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List
from urllib.parse import urlsplit

import pytest

from devtools.bad_input import (
    CASE_BOUND_S,
    CATEGORIES,
    RATE_LIMIT_COUNT,
    Burst,
    Case,
    CaseResult,
    bad_input_bot,
    burst,
    check_sensible,
    corpus,
    run_case,
    texts,
    user_events,
)
from devtools.harness import Bot

e2e = pytest.mark.e2e
CASES = corpus()
# What a server error leaves in the Rasa log (Sanic's handler, a 500 status).
SERVER_ERROR = re.compile(
    r"Traceback|Exception occurred while handling|Internal Server Error"
    r"|\b500\b"
)


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    with bad_input_bot(tmp_path_factory.mktemp("bad_input")) as running:
        yield running


@pytest.fixture(scope="module")
def ran() -> Dict[str, CaseResult]:
    """The results of the cases run so far against the module's bot."""
    return {}


def result_of(bot: Bot, ran: Dict[str, CaseResult], case: Case) -> CaseResult:
    if case.id not in ran:
        ran[case.id] = run_case(bot, case)
    return ran[case.id]


def test_the_corpus_covers_every_category() -> None:
    ids = [case.id for case in CASES]
    assert len(CASES) >= 60
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    counts = Counter(case.category for case in CASES)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 3, counts
    assert {case.transport for case in CASES} == {
        "rest",
        "wecom",
        "wechat_mp",
        "socketio",
    }


@e2e
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gets_its_expected_answer_in_bounded_time(
    bot: Bot, ran: Dict[str, CaseResult], case: Case
) -> None:
    result = result_of(bot, ran, case)
    assert result.passed, f"{case.expect.outcome.value}: {result.detail}"
    assert result.elapsed_s < CASE_BOUND_S
    assert result.status is None or result.status < 500


@pytest.fixture(scope="module")
def after_corpus(bot: Bot, ran: Dict[str, CaseResult]) -> Dict[str, CaseResult]:
    """Every case has run (also when pytest selected only some of them)."""
    for case in CASES:
        result_of(bot, ran, case)
    return ran


@e2e
def test_after_the_corpus_a_new_user_is_answered_normally(
    bot: Bot, after_corpus: Dict[str, CaseResult]
) -> None:
    sender = f"after_corpus_{uuid.uuid4().hex[:8]}"
    said = [str(m.get("text") or "") for m in bot.say(sender, "借呗入口不见了")]
    check_sensible(said)
    [event] = user_events(bot.tracker(sender))
    assert event["parse_data"]["intent"]["name"] == "jiebei_entry_missing"


@e2e
def test_after_the_corpus_the_log_has_no_traceback_and_no_500(
    bot: Bot, after_corpus: Dict[str, CaseResult]
) -> None:
    workdir = Path(bot.env["TRACKER_DB_PATH"]).parent
    for name in ("rasa.log", "actions.log"):
        log = (workdir / name).read_text(errors="replace")
        found = [line for line in log.splitlines() if SERVER_ERROR.search(line)]
        assert not found, f"{name}:\n" + "\n".join(found[:20])


# --- the rate limit -------------------------------------------------------------


@dataclass
class Limited:
    """A burst of one sender past the limit, and another sender right after."""

    sender: str
    burst: Burst
    seconds_to_limit: float
    other_said: List[str]


@pytest.fixture(scope="module")
def limited(bot: Bot) -> Limited:
    sender = f"rate_{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    sent = burst(bot, sender, RATE_LIMIT_COUNT + 1)
    seconds = time.monotonic() - started
    other = f"rate_other_{uuid.uuid4().hex[:8]}"
    other_said = [str(m.get("text") or "") for m in bot.say(other, "你好")]
    return Limited(sender, sent, seconds, other_said)


@e2e
def test_a_sender_within_the_limit_is_answered_every_time(limited: Limited) -> None:
    assert limited.seconds_to_limit < 50, "too slow to test a per-minute limit"
    for said in limited.burst.said[:RATE_LIMIT_COUNT]:
        check_sensible(said)


@e2e
def test_the_message_over_the_limit_gets_the_rate_limit_answer_and_is_not_processed(
    bot: Bot, limited: Limited
) -> None:
    assert limited.burst.limited() == [RATE_LIMIT_COUNT]
    assert limited.burst.said[-1] == [texts().rate_limited]
    assert limited.burst.seconds[-1] < CASE_BOUND_S
    stored = [e.get("text") for e in user_events(bot.tracker(limited.sender))]
    assert stored == limited.burst.sent[:RATE_LIMIT_COUNT]


@e2e
def test_another_sender_is_not_limited(limited: Limited) -> None:
    check_sensible(limited.other_said)


@e2e
@pytest.mark.parametrize("method", ["POST", "OPTIONS"])
def test_rest_grants_no_foreign_origin(bot: Bot, method: str) -> None:
    """A page of another site cannot read REST answers (no CORS grant)."""
    url = urlsplit(bot.rasa_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    body = json.dumps({"sender": f"cors_{uuid.uuid4().hex[:6]}", "message": "你好"})
    connection.request(
        method,
        "/webhooks/rest/webhook",
        body=body.encode() if method == "POST" else None,
        headers={
            "Origin": "http://evil.example",
            "Content-Type": "application/json",
            "Access-Control-Request-Method": "POST",
        },
    )
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status < 500
    assert response.getheader("Access-Control-Allow-Origin") is None
