"""Rasa's socket.io channel for the web chat page, behind the inbound pipeline.

Same name, URL and events as Rasa's own (``/socket.io``); credentials.yml
names this class instead of ``socketio:``. What it adds to Rasa's:

- only the origins in ``WEB_ALLOWED_ORIGINS`` may connect from a browser
  (Rasa switches python-socketio's origin check off);
- an event the channel cannot read gets ``utter_bad_message`` instead of an
  exception;
- a persistent session's socket really joins its session's room (Rasa 3.6
  forgets to await it, and every bot reply is lost);
- Sanic's body limit ``MAX_REQUEST_BYTES``, as the REST channel sets it;
- every message passes the inbound pipeline (bot_server/pipeline/).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Union

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint

from bot_server.channels.common import MAX_SENDER_CHARS, PipelinedInput, valid_id
from bot_server.pipeline import replies
from settings import rasa_server_settings

logger = logging.getLogger(__name__)

BAD_MESSAGE_RESPONSE = "utter_bad_message"


class GuardedSocketIOInput(PipelinedInput, SocketIOInput):
    """Rasa's socket.io channel; every message gets an answer."""

    @classmethod
    def name(cls) -> str:
        """Rasa's name for the socket.io channel."""
        return "socketio"

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        """Rasa's blueprint around the pipeline's handler, with sessions that work."""
        blueprint, handler, agent = self.pipelined_blueprint(on_new_message)
        sio = self.sio
        assert sio is not None  # set by SocketIOInput.blueprint

        # Rasa passes cors_allowed_origins=[], which switches python-engineio's
        # origin check off: any web site could chat in its visitors' names.
        origins = list(rasa_server_settings().web_allowed_origins)
        sio.eio.cors_allowed_origins = origins
        if "*" in origins:
            logger.warning("WEB_ALLOWED_ORIGINS allows every origin")

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: str, data: Any = None) -> None:
            output = SocketIOOutput(sio, self.bot_message_evt)
            checked = self.check_event(sid, data)
            if isinstance(checked, str):
                logger.info("socket.io event of %s refused: %s", sid, checked)
                reply = await replies.render_answer(
                    agent(), BAD_MESSAGE_RESPONSE, sid, self.name()
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
