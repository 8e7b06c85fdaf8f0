"""What the REST and socket.io channels accept (bot_server/channels.py)."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

import pytest
from rasa.core.channels.channel import UserMessage

from bot_server.channels import (
    GuardedSocketIOInput,
    Problem,
    check_rest_request,
)
from bot_server.guard import LAST_RESORT_TEXT

JSON = "application/json"
LIMIT = 200_000


def body(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("content_type", "raw", "status", "words"),
    [
        ("text/plain", body({"sender": "a", "message": "hi"}), 415, "Content-Type"),
        ("", body({"sender": "a", "message": "hi"}), 415, "Content-Type"),
        (
            "application/x-www-form-urlencoded",
            b"sender=a&message=hi",
            415,
            "Content-Type",
        ),
        (JSON, b'{"sender": "a", "message": "\xff\xfe"}', 400, "UTF-8"),
        (JSON, b'{"sender": "a", "message": ', 400, "JSON"),
        (JSON, b"", 400, "JSON"),
        (JSON, body(["a", "hi"]), 400, "object"),
        (
            JSON,
            b'{"sender": "a", "m": ' + b"[" * 90_000 + b"]" * 90_000 + b"}",
            400,
            "JSON",
        ),
        (JSON, body("hi"), 400, "object"),
        (JSON, body({"message": "hi"}), 400, '"sender"'),
        (JSON, body({"sender": 7, "message": "hi"}), 400, '"sender"'),
        (JSON, body({"sender": "  ", "message": "hi"}), 400, '"sender"'),
        (JSON, body({"sender": "x" * 129, "message": "hi"}), 400, "128"),
        (JSON, b'{"sender": "a\\ud800", "message": "hi"}', 400, "Unicode"),
        (JSON, body({"sender": "a"}), 400, '"message"'),
        (JSON, body({"sender": "a", "message": None}), 400, '"message"'),
        (JSON, body({"sender": "a", "message": ["hi"]}), 400, '"message"'),
        (JSON, body({"sender": "a", "message": "x" * LIMIT}), 413, "larger"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem(
    content_type: str, raw: bytes, status: int, words: str
) -> None:
    problem = check_rest_request(content_type, raw, LIMIT)
    assert isinstance(problem, Problem)
    assert problem.status == status
    assert words in problem.error


def test_a_good_request_passes_without_the_fields_rasa_should_not_take() -> None:
    raw = json.dumps(
        {
            "sender": "u1",
            "message": "借呗\ud800不见了",
            "input_channel": "wecom",
            "metadata": {"a": 1},
            "extra": True,
        }
    ).encode()  # ASCII escapes: the lone surrogate arrives as \\ud800
    checked = check_rest_request("application/json; charset=utf-8", raw, LIMIT)
    assert checked == {
        "sender": "u1",
        "message": "借呗\ud800不见了",
        "metadata": {"a": 1},
    }


def socket_channel() -> GuardedSocketIOInput:
    channel = GuardedSocketIOInput.from_credentials(
        {"user_message_evt": "user_uttered", "session_persistence": True}
    )
    return channel


@pytest.mark.parametrize(
    "data",
    [
        None,
        "借呗不见了",
        ["借呗"],
        {"message": "借呗"},  # no session
        {"message": 5, "session_id": "s1"},
        {"message": "借呗", "session_id": ""},
        {"message": "借呗", "session_id": "s" * 200},
        {"message": "借呗", "session_id": "s\ud800"},
    ],
)
def test_socket_events_the_channel_cannot_read(data: Any) -> None:
    assert isinstance(socket_channel().check_event("sid", data), str)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"message": "借呗", "session_id": "s1"}, ("s1", "借呗", None)),
        ({"session_id": "s1"}, ("s1", "", None)),  # the guard answers the empty one
        (
            {"message": "嗯", "session_id": "s1", "metadata": '{"k": 1}'},
            ("s1", "嗯", {"k": 1}),
        ),
        (
            {"message": "嗯", "session_id": "s1", "metadata": "{not json"},
            ("s1", "嗯", None),
        ),
        ({"message": "嗯", "session_id": "s1", "metadata": [1]}, ("s1", "嗯", None)),
    ],
)
def test_socket_events_the_channel_reads(
    data: Dict[str, Any], expected: Tuple[str, str, Optional[Dict[str, Any]]]
) -> None:
    assert socket_channel().check_event("sid", data) == expected


async def test_a_socket_event_it_cannot_read_gets_the_bad_message_reply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = socket_channel()
    handled: List[Any] = []

    async def handler(message: UserMessage) -> None:
        handled.append(message)

    channel.blueprint(handler)
    sio = channel.sio
    emitted: List[Tuple[str, Any, Any]] = []

    async def emit(event: str, data: Any = None, room: Any = None, **_: Any) -> None:
        emitted.append((event, data, room))

    sio.emit = emit
    await sio.handlers["/"]["user_uttered"]("sid-9", "not a dict")
    assert handled == []
    assert len(emitted) == 1
    event, data, room = emitted[0]
    assert (event, room) == ("bot_uttered", "sid-9")
    # No agent in a unit test: the guard's last-resort text stands in for the
    # domain's utter_bad_message (the e2e corpus checks the domain text).
    assert data["text"] == LAST_RESORT_TEXT


def test_socket_origins_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WEB_ALLOWED_ORIGINS", raising=False)
    channel = socket_channel()
    channel.blueprint(lambda m: None)  # type: ignore[arg-type,return-value]
    assert channel.sio.eio.cors_allowed_origins == [
        "http://127.0.0.1:8080",
        "http://localhost:8080",
    ]
    monkeypatch.setenv("WEB_ALLOWED_ORIGINS", "https://chat.example.cn/, https://a.b")
    channel = socket_channel()
    channel.blueprint(lambda m: None)  # type: ignore[arg-type,return-value]
    assert channel.sio.eio.cors_allowed_origins == [
        "https://chat.example.cn",
        "https://a.b",
    ]
