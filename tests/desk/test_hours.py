"""The desk's service hours (desk/hours.py): parsing, open or not, next opening."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional
from zoneinfo import ZoneInfo

import pytest

from desk.hours import ServiceHours

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


@pytest.mark.parametrize(
    ("spec", "now", "open_"),
    [
        ("09:00-21:00", "2026-12-07 08:59", False),
        ("09:00-21:00", "2026-12-07 09:00", True),
        ("09:00-21:00", "2026-12-07 20:59", True),
        ("09:00-21:00", "2026-12-07 21:00", False),
        ("21:00-09:00", "2026-12-07 23:30", True),
        ("21:00-09:00", "2026-12-07 08:59", True),
        ("21:00-09:00", "2026-12-07 12:00", False),
        ("always", "2026-12-07 03:00", True),
        ("Always", "2026-12-07 03:00", True),
    ],
)
def test_open_or_not_in_local_time(spec: str, now: str, open_: bool) -> None:
    assert ServiceHours.parse(spec).is_open(at(now)) is open_


def test_the_clock_is_read_in_the_desks_time_zone() -> None:
    hours = ServiceHours.parse("09:00-21:00")
    # 02:00 UTC is 10:00 in Shanghai; 14:00 UTC is 22:00 there.
    assert hours.is_open(datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc))
    assert not hours.is_open(datetime(2026, 12, 7, 14, 0, tzinfo=timezone.utc))
    berlin = ServiceHours.parse("09:00-21:00", "Europe/Berlin")
    assert not berlin.is_open(datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc))


@pytest.mark.parametrize(
    ("spec", "now", "opens"),
    [
        ("09:00-21:00", "2026-12-07 07:15", "2026-12-07 09:00"),
        ("09:00-21:00", "2026-12-07 22:10", "2026-12-08 09:00"),
        ("09:00-21:00", "2026-12-31 23:59", "2027-01-01 09:00"),
        ("21:00-09:00", "2026-12-07 12:00", "2026-12-07 21:00"),
        ("09:00-21:00", "2026-12-07 10:00", None),
        ("always", "2026-12-07 03:00", None),
    ],
)
def test_next_opening(spec: str, now: str, opens: Optional[str]) -> None:
    found = ServiceHours.parse(spec).next_opening(at(now))
    assert found == (at(opens) if opens else None)
    if found is not None:
        assert found.utcoffset() == at(now).utcoffset()


def test_next_opening_is_in_local_time_whatever_now_is_given_in() -> None:
    found = ServiceHours.parse("09:00-21:00").next_opening(
        datetime(2026, 12, 7, 14, 0, tzinfo=timezone.utc)  # 22:00 in Shanghai
    )
    assert found is not None and (found.day, f"{found:%H:%M}") == (8, "09:00")


def test_a_day_with_a_clock_change_opens_at_the_local_time() -> None:
    # Berlin: 2026-03-29 has 23 hours (02:00 -> 03:00).
    found = ServiceHours.parse("09:00-21:00", "Europe/Berlin").next_opening(
        at("2026-03-28 22:00", ZoneInfo("Europe/Berlin"))
    )
    assert (
        found is not None and f"{found:%Y-%m-%d %H:%M %z}" == "2026-03-29 09:00 +0200"
    )


@pytest.mark.parametrize(
    "spec",
    ["", "9:00-21:00", "09:00", "09:00-24:00", "09:60-10:00", "10:00-10:00", "x"],
)
def test_bad_hours_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        ServiceHours.parse(spec)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        ServiceHours.parse("always", "Mars/Olympus")


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        ServiceHours.parse("09:00-21:00").is_open(datetime(2026, 12, 7, 10, 0))


def test_the_label_is_what_was_configured() -> None:
    assert ServiceHours.parse(" 09:00-21:00 ").label == "09:00-21:00"
    assert ServiceHours.parse("ALWAYS").label == "always"
