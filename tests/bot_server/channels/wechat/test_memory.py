"""Replay cache and numbered buttons (bot_server/channels/wechat/memory.py)."""

from __future__ import annotations

import pytest

from bot_server.channels.wechat.memory import (
    ButtonMemory,
    NumberedButton,
    ReplayCache,
    as_number,
    number_buttons,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_seen_once_within_the_ttl() -> None:
    clock = Clock()
    cache = ReplayCache(ttl_s=600, clock=clock)
    assert cache.seen_before("id:1") is False
    assert cache.seen_before("id:1") is True
    assert cache.seen_before("id:2") is False
    clock.now = 599
    assert cache.seen_before("id:1") is True
    clock.now = 601
    assert cache.seen_before("id:1") is False  # expired, remembered afresh
    assert len(cache) == 1  # id:2 expired and was dropped


def test_the_replay_cache_is_bounded() -> None:
    cache = ReplayCache(max_entries=3, clock=Clock())
    for key in "abcde":
        cache.seen_before(key)
    assert len(cache) == 3
    assert cache.seen_before("e") is True
    assert cache.seen_before("a") is False  # the oldest went first


STEP_BUTTONS = [
    {"title": "完成了", "payload": "/affirm"},
    {"title": "没做成", "payload": "/deny"},
    {"title": "转人工", "payload": "/request_human"},
]
RATING_BUTTONS = [{"title": f"{n} 分", "payload": str(n)} for n in (5, 4, 3, 2, 1)]


def test_buttons_are_numbered_in_order() -> None:
    assert number_buttons(STEP_BUTTONS) == [
        NumberedButton("1", "完成了", "/affirm"),
        NumberedButton("2", "没做成", "/deny"),
        NumberedButton("3", "转人工", "/request_human"),
    ]


def test_buttons_whose_payloads_are_numbers_keep_them() -> None:
    numbered = number_buttons(RATING_BUTTONS)
    assert [(b.number, b.title) for b in numbered] == [
        ("5", "5 分"), ("4", "4 分"), ("3", "3 分"), ("2", "2 分"), ("1", "1 分"),
    ]  # fmt: skip
    # repeated numbers cannot be keys: numbered in order instead
    twice = number_buttons(
        [{"title": "a", "payload": "1"}, {"title": "b", "payload": "1"}]
    )
    assert [b.number for b in twice] == ["1", "2"]


def test_a_button_without_payload_sends_its_title() -> None:
    assert number_buttons([{"title": "好的"}]) == [NumberedButton("1", "好的", "好的")]


@pytest.mark.parametrize(
    "text, number",
    [("1", "1"), (" 2 ", "2"), ("１", "1"), ("3。", "3"), ("01", "1"), ("12", "12"),
     ("1分", None), ("一", None), ("", None), ("1 2", None), ("1234", None)],
)  # fmt: skip
def test_as_number(text: str, number: str | None) -> None:
    assert as_number(text) == number


def test_a_number_is_the_payload_of_the_last_turns_button() -> None:
    memory = ButtonMemory(clock=Clock())
    memory.remember("u1", number_buttons(STEP_BUTTONS))
    assert memory.resolve("u1", "2") == "/deny"


def test_the_buttons_belong_to_their_user() -> None:
    memory = ButtonMemory(clock=Clock())
    memory.remember("u1", number_buttons(STEP_BUTTONS))
    assert memory.resolve("u2", "1") == "1"
    assert memory.resolve("u1", "1") == "/affirm"


def test_a_turn_without_buttons_passes_numbers_through() -> None:
    memory = ButtonMemory(clock=Clock())
    memory.remember("u1", number_buttons(STEP_BUTTONS))
    assert (
        memory.resolve("u1", "完成了") == "完成了"
    )  # the user's turn ends the buttons
    assert memory.resolve("u1", "1") == "1"  # e.g. a free answer to the next question


def test_a_number_beyond_the_buttons_is_text() -> None:
    memory = ButtonMemory(clock=Clock())
    memory.remember("u1", number_buttons(STEP_BUTTONS))
    assert memory.resolve("u1", "4") == "4"


def test_newer_buttons_replace_older_ones() -> None:
    memory = ButtonMemory(clock=Clock())
    memory.remember("u1", number_buttons(STEP_BUTTONS))
    memory.remember("u1", number_buttons(RATING_BUTTONS))
    assert memory.resolve("u1", "1") == "1"  # "1 分", not "完成了"


def test_buttons_expire() -> None:
    clock = Clock()
    memory = ButtonMemory(ttl_s=3600, clock=clock)
    memory.remember("u1", number_buttons(STEP_BUTTONS))
    clock.now = 3601
    assert memory.resolve("u1", "1") == "1"


def test_the_button_memory_is_bounded() -> None:
    memory = ButtonMemory(max_users=2, clock=Clock())
    for user in ("a", "b", "c"):
        memory.remember(user, number_buttons(STEP_BUTTONS))
    assert len(memory) == 2
    assert memory.resolve("a", "1") == "1"  # the least recent user was dropped
    assert memory.resolve("c", "1") == "/affirm"
