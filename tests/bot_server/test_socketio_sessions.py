"""socket.io sessions: a persistent session's socket joins its room (bot_server/channels.py)."""

from __future__ import annotations

from typing import Any, List, Tuple

from bot_server.channels import GuardedSocketIOInput


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
