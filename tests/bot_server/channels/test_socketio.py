"""The socket.io channel (bot_server/channels/socketio.py): events, origins, sessions."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import pytest
from rasa.core.channels.channel import UserMessage
from socketio import AsyncRedisManager  # type: ignore[import-untyped]

from bot_server.channels.socketio import (
    ROOMS_CHANNEL,
    AgentAwareSocketIOOutput,
    GuardedSocketIOInput,
)
from bot_server.pipeline.replies import LAST_RESORT_TEXT
from settings.processes import clear_settings


async def _noop(message: Any) -> None:
    return None


async def test_session_request_joins_the_session_room() -> None:
    channel = GuardedSocketIOInput.from_credentials(
        {
            "user_message_evt": "user_uttered",
            "bot_message_evt": "bot_uttered",
            "session_persistence": True,
        }
    )
    channel.blueprint(_noop)
    sio = channel.sio
    joined: List[Tuple[str, str]] = []
    emitted: List[Tuple[str, Any, Any]] = []

    async def enter_room(sid: str, room: str, namespace: Any = None) -> None:
        joined.append((sid, room))

    async def emit(
        event: str, data: Any = None, room: Any = None, **kwargs: Any
    ) -> None:
        emitted.append((event, data, room))

    sio.enter_room = enter_room
    sio.emit = emit
    handler = sio.handlers["/"]["session_request"]
    await handler("sid-1", {"session_id": "demo_account_frozen"})
    assert joined == [("sid-1", "demo_account_frozen")]
    assert emitted == [("session_confirm", "demo_account_frozen", "sid-1")]

    await handler("sid-2", None)  # no id: a new one is made up and confirmed
    assert joined[-1][0] == "sid-2" and len(joined[-1][1]) == 32
    assert emitted[-1] == ("session_confirm", joined[-1][1], "sid-2")


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
    # No agent in a unit test: the last-resort text stands in for the
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
    clear_settings()  # a new process
    channel = socket_channel()
    channel.blueprint(lambda m: None)  # type: ignore[arg-type,return-value]
    assert channel.sio.eio.cors_allowed_origins == [
        "https://chat.example.cn",
        "https://a.b",
    ]


class Emits:
    """Stands in for AsyncServer.emit: what went to which room."""

    def __init__(self) -> None:
        self.sent: List[Tuple[str, Any, Any]] = []

    async def __call__(
        self, event: str, data: Any = None, room: Any = None, **_: Any
    ) -> None:
        self.sent.append((event, data, room))


def output_with_emits() -> Tuple[Any, Emits]:
    channel = socket_channel()
    channel.blueprint(_noop)
    emits = Emits()
    channel.sio.emit = emits
    output = channel.get_output_channel()
    assert isinstance(output, AgentAwareSocketIOOutput)
    return output, emits


async def test_an_agents_message_carries_the_agents_name() -> None:
    output, emits = output_with_emits()
    # What Rasa hands the channel for the bot event the desk appended.
    await output.send_response(
        "session-1",
        {
            "text": "您好，我是小安。\n\n请问借呗入口是什么时候不见的？",
            "human_agent": {"id": "agent1", "name": "小安"},
        },
    )
    assert emits.sent == [
        (
            "bot_uttered",
            {
                "text": "您好，我是小安。\n\n请问借呗入口是什么时候不见的？",
                "human_agent": {"name": "小安"},
            },
            "session-1",
        )
    ]


async def test_the_bots_own_messages_stay_as_rasa_sends_them() -> None:
    output, emits = output_with_emits()
    await output.send_response("session-1", {"text": "第一段\n\n第二段"})
    assert [data for _, data, _ in emits.sent] == [
        {"text": "第一段"},
        {"text": "第二段"},
    ]


@pytest.mark.parametrize(
    ("agent", "name"),
    [({"name": "  小  宁 "}, "小 宁"), ({"id": "a2"}, ""), ({"name": 5}, "")],
)
async def test_an_agent_without_a_usable_name_is_still_an_agent(
    agent: Any, name: str
) -> None:
    output, emits = output_with_emits()
    await output.send_response("s", {"text": "好的", "human_agent": agent})
    assert emits.sent[0][1] == {"text": "好的", "human_agent": {"name": name}}


def test_processes_share_rooms_through_redis_when_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHANNEL_STATE_URL", "redis://127.0.0.1:6379/0")
    clear_settings()
    channel = socket_channel()
    channel.blueprint(_noop)
    manager = channel.sio.manager
    assert isinstance(manager, AsyncRedisManager)
    assert manager.server is channel.sio and manager.channel == ROOMS_CHANNEL
    monkeypatch.setenv("CHANNEL_STATE_URL", "memory://")
    clear_settings()
    alone = socket_channel()
    alone.blueprint(_noop)
    assert not isinstance(alone.sio.manager, AsyncRedisManager)
