"""The REST and socket.io channels with the reply guard (see bot_server.guard).

Same names, URLs and payloads as Rasa's own channels (``/webhooks/rest/webhook``,
``/socket.io``); credentials.yml names these classes instead of ``rest:`` and
``socketio:``.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

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
        """Rasa's blueprint around the guarded handler."""
        return super().blueprint(guarded(on_new_message))
