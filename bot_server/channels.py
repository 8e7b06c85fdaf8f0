"""The REST and socket.io channels with the reply guard (see bot_server.guard).

Same names, URLs and payloads as Rasa's own channels (``/webhooks/rest/webhook``,
``/socket.io``); credentials.yml names these classes instead of ``rest:`` and
``socketio:``. What they add to Rasa's:

- REST: the request is checked before Rasa reads it. A body that is not UTF-8
  JSON, not an object, lacks a string ``sender`` (1..128 characters) or a
  string ``message``, or comes with another content type gets a 4xx with a
  JSON ``{"error": ...}`` naming the problem (Rasa answered most of these with
  a 500, and a missing sender put the message into a shared "default"
  conversation). Bodies over ``REST_MAX_BODY_BYTES`` (256 KiB) get 413. A
  client can no longer name the input channel (Rasa took ``input_channel``
  from the body).
- every request to the server: Sanic's body limit becomes
  ``MAX_REQUEST_BYTES`` (1 MiB; Sanic's default is 100 MB).
- socket.io: only the origins in ``WEB_ALLOWED_ORIGINS`` may connect from a
  browser (Rasa switches python-socketio's origin check off); an event the
  channel cannot read gets ``utter_bad_message`` instead of an exception.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional, Union

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint, Sanic
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from bot_server import speedups
from bot_server.guard import BAD_MESSAGE_RESPONSE, current_agent, guarded, render

logger = logging.getLogger(__name__)

DEFAULT_REST_MAX_BODY_BYTES = 256 * 1024
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
MAX_SENDER_CHARS = 128
# The chat page of `make serve` (bot_server/webpage.py on WEB_PORT 8080).
DEFAULT_ALLOWED_ORIGINS = "http://127.0.0.1:8080,http://localhost:8080"

speedups.install()  # the Rasa server loads this module at startup (credentials.yml)


def _positive_int(name: str, raw: str, default: int) -> int:
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    if raw:
        logger.error("%s=%r is not a positive integer; using %s", name, raw, default)
    return default


def rest_max_body_bytes() -> int:
    """``REST_MAX_BODY_BYTES``: the largest REST message body (256 KiB)."""
    raw = os.environ.get("REST_MAX_BODY_BYTES", "")
    return _positive_int("REST_MAX_BODY_BYTES", raw, DEFAULT_REST_MAX_BODY_BYTES)


def max_request_bytes() -> int:
    """``MAX_REQUEST_BYTES``: Sanic's body limit for every request (1 MiB)."""
    raw = os.environ.get("MAX_REQUEST_BYTES", "")
    return _positive_int("MAX_REQUEST_BYTES", raw, DEFAULT_MAX_REQUEST_BYTES)


def allowed_origins() -> List[str]:
    """``WEB_ALLOWED_ORIGINS``: the page origins that may open a socket.io session."""
    raw = os.environ.get("WEB_ALLOWED_ORIGINS", "") or DEFAULT_ALLOWED_ORIGINS
    origins = [origin.strip().rstrip("/") for origin in raw.split(",")]
    return [origin for origin in origins if origin]


def valid_id(value: str) -> bool:
    """A conversation id the stores can encode (no lone surrogates)."""
    return not any("\ud800" <= char <= "\udfff" for char in value)


@dataclass(frozen=True)
class Problem:
    """Why a request is refused: HTTP status and one sentence for the client."""

    status: int
    error: str


def check_rest_request(
    content_type: str, body: bytes, max_bytes: int
) -> Union[Dict[str, Any], Problem]:
    """The body Rasa may read (sender, message, metadata), or the problem."""
    if len(body) > max_bytes:
        return Problem(413, f"The body is larger than {max_bytes} bytes.")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        return Problem(415, "The Content-Type must be application/json.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Problem(400, "The body is not valid UTF-8.")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        return Problem(400, "The body is not valid JSON.")
    if not isinstance(data, dict):
        return Problem(400, "The body must be a JSON object.")
    sender = data.get("sender")
    if not isinstance(sender, str) or not sender.strip():
        return Problem(400, 'The field "sender" must be a non-empty string.')
    if len(sender) > MAX_SENDER_CHARS:
        return Problem(
            400, f'The field "sender" must be at most {MAX_SENDER_CHARS} characters.'
        )
    if not valid_id(sender):
        return Problem(400, 'The field "sender" must be valid Unicode text.')
    message = data.get("message")
    if not isinstance(message, str):
        return Problem(400, 'The field "message" must be a string.')
    checked: Dict[str, Any] = {"sender": sender, "message": message}
    if isinstance(data.get("metadata"), dict):
        checked["metadata"] = data["metadata"]
    return checked


class GuardedRestInput(RestInput):
    """Rasa's REST channel; every message gets an answer, bad requests a 4xx."""

    @classmethod
    def name(cls) -> str:
        """Rasa's name, so the URL stays /webhooks/rest/webhook."""
        return "rest"

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[None]]
    ) -> Blueprint:
        """Rasa's blueprint around the guarded handler, behind the request check."""
        blueprint = super().blueprint(guarded(on_new_message))
        max_bytes = rest_max_body_bytes()

        @blueprint.middleware("request")
        async def check_request(request: Request) -> Optional[HTTPResponse]:
            if request.method != "POST" or not request.path.endswith("/webhook"):
                return None
            checked = check_rest_request(
                request.headers.get("content-type", ""), request.body or b"", max_bytes
            )
            if isinstance(checked, Problem):
                logger.info(
                    "REST request refused (%s): %s", checked.status, checked.error
                )
                return json_response({"error": checked.error}, status=checked.status)
            request.parsed_json = checked  # what Rasa's handler reads
            return None

        limit_request_size(blueprint)
        return blueprint


def limit_request_size(blueprint: Blueprint) -> None:
    """Sanic's body limit for the whole server, once the app exists."""

    async def configure(app: Sanic, _: Any) -> None:
        app.config.REQUEST_MAX_SIZE = max_request_bytes()

    blueprint.listener("before_server_start")(configure)


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
        handler = guarded(on_new_message)
        blueprint = super().blueprint(handler)
        sio = self.sio
        assert sio is not None  # set by SocketIOInput.blueprint

        # Rasa passes cors_allowed_origins=[], which switches python-engineio's
        # origin check off: any web site could chat in its visitors' names.
        origins = allowed_origins()
        sio.eio.cors_allowed_origins = origins
        if "*" in origins:
            logger.warning("WEB_ALLOWED_ORIGINS allows every origin")
        limit_request_size(blueprint)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: str, data: Any = None) -> None:
            output = SocketIOOutput(sio, self.bot_message_evt)
            checked = self.check_event(sid, data)
            if isinstance(checked, str):
                logger.info("socket.io event of %s refused: %s", sid, checked)
                reply = await render(
                    current_agent(), BAD_MESSAGE_RESPONSE, sid, self.name()
                )
                await output.send_response(sid, reply)
                return
            sender, text, metadata = checked
            await handler(
                UserMessage(
                    text, output, sender, input_channel=self.name(), metadata=metadata
                )
            )

        # Rasa 3.6 calls AsyncServer.enter_room without await, a coroutine since
        # python-socketio 5 (RasaHQ/rasa#13027): with session_persistence the
        # socket never joins its session's room and every bot reply is lost.
        # Same handler as Rasa's, awaited; it replaces Rasa's registration.
        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: str, data: Any = None) -> None:
            data = dict(data) if isinstance(data, dict) else {}
            session_id = data.get("session_id")
            if (
                not isinstance(session_id, str)
                or not session_id.strip()
                or len(session_id) > MAX_SENDER_CHARS
                or not valid_id(session_id)
            ):
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

    def check_event(
        self, sid: str, data: Any
    ) -> Union[str, tuple[str, str, Optional[Dict[str, Any]]]]:
        """(sender, text, metadata) of a user_uttered event, or the problem."""
        if not isinstance(data, dict):
            return "the event data is not an object"
        text = data.get("message", "")
        if not isinstance(text, str):
            return "the message is not a string"
        if self.session_persistence:
            sender = data.get("session_id")
            if not isinstance(sender, str) or not sender.strip():
                return "no session_id"
            if len(sender) > MAX_SENDER_CHARS or not valid_id(sender):
                return "the session_id is too long or not valid text"
        else:
            sender = sid
        metadata = data.get(self.metadata_key)
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except (ValueError, RecursionError):
                metadata = None
        return sender, text, metadata if isinstance(metadata, dict) else None
