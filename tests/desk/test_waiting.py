"""What a waiting user is told (desk/waiting.py)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from desk.hours import ServiceHours
from desk.waiting import CLOSED, QUEUED, QUEUED_WITH_WAIT, UNQUEUED, waiting_news

DAY = ServiceHours.parse("09:00-21:00")
NOON = datetime(2026, 12, 7, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
NIGHT = datetime(2026, 12, 7, 23, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_in_hours_the_place_in_the_queue() -> None:
    news = waiting_news(DAY, NOON, 3, None)
    assert (news.kind, news.values) == (QUEUED, {"queue_position": 3})


def test_the_expected_wait_when_recent_cases_tell_it() -> None:
    news = waiting_news(DAY, NOON, 2, 290.0)
    assert news.kind == QUEUED_WITH_WAIT
    assert news.values == {"queue_position": 2, "wait_minutes": 5}


def test_the_wait_left_is_what_the_case_has_not_waited_yet() -> None:
    assert waiting_news(DAY, NOON, 1, 600.0, waited_s=540.0).values["wait_minutes"] == 1
    assert waiting_news(DAY, NOON, 1, 600.0, waited_s=599.5).values["wait_minutes"] == 1
    # Waited longer than usual: no estimate rather than a wrong one.
    assert waiting_news(DAY, NOON, 1, 600.0, waited_s=900.0).kind == QUEUED


def test_outside_hours_when_agents_are_back() -> None:
    news = waiting_news(DAY, NIGHT, 1, 60.0)
    assert news.kind == CLOSED
    assert news.values == {
        "service_hours": "09:00-21:00",
        "opens_month": 12,
        "opens_day": 8,
        "opens_time": "09:00",
    }


def test_an_unknown_place_says_so() -> None:
    assert waiting_news(DAY, NOON, None, 60.0).kind == UNQUEUED


def test_always_open_is_never_closed() -> None:
    assert waiting_news(ServiceHours.parse("always"), NIGHT, 1, None).kind == QUEUED
