"""What the REST channel accepts (bot_server/channels/rest.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot_server.channels.rest import Problem, check_rest_request

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
