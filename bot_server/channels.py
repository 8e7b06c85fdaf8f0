"""The REST and socket.io channels with the reply guard (see bot_server.guard).

Same names, URLs and payloads as Rasa's own channels (``/webhooks/rest/webhook``,
``/socket.io``); credentials.yml names these classes instead of ``rest:`` and
``socketio:``.
"""

from __future__ import annotations

import uuid
from typing import Any, Awaitable, Callable, Dict, Optional

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint

from bot_server import speedups
from bot_server.guard import guarded

speedups.install()  # the Rasa server loads this module at startup (credentials.yml)


class GuardedRestInput(RestInput):
    """Rasa's REST channel; every message gets an answer."""

    @classmethod
    def name(cls) -> str:
        """Rasa's name, so the URL stays /webhooks/rest/webhook."""
        return "rest"

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[None]]
    ) -> Blueprint:
        """Rasa's blueprint around the guarded handler."""
        return super().blueprint(guarded(on_new_message))


class GuardedSocketIOInput(SocketIOInput):
    """Rasa's socket.io channel; every message gets an answer."""

    @classmethod
    def name(cls) -> str:
        """Rasa's name for the socket.io channel."""
        return "socketio"

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        """Rasa's blueprint around the guarded handler, with sessions that work."""
        blueprint = super().blueprint(guarded(on_new_message))
        sio = self.sio
        assert sio is not None  # set by SocketIOInput.blueprint

        # Rasa 3.6 calls AsyncServer.enter_room without await, a coroutine since
        # python-socketio 5 (RasaHQ/rasa#13027): with session_persistence the
        # socket never joins its session's room and every bot reply is lost.
        # Same handler as Rasa's, awaited; it replaces Rasa's registration.
        @sio.on("session_request", namespace=self.namespace)
        async def session_request(
            sid: str, data: Optional[Dict[str, Any]] = None
        ) -> None:
            data = dict(data or {})
            if not data.get("session_id"):
                data["session_id"] = uuid.uuid4().hex
            if self.session_persistence:
                await sio.enter_room(sid, data["session_id"], namespace=self.namespace)
            await sio.emit(
                "session_confirm",
                data["session_id"],
                room=sid,
                namespace=self.namespace,
            )

        return blueprint
