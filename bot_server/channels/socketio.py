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
- every message passes the inbound pipeline (bot_server/pipeline/);
- a human agent's message (``metadata.human_agent``, desk/relay.py) goes out
  as ``{"text", "human_agent": {"name"}}``, which the chat page shows as
  人工客服 · <name>; the same output class answers the user's messages and the
  messages Rasa sends on its own (the HTTP API's ``output_channel=latest``);
- with ``CHANNEL_STATE_URL=redis://...`` the Rasa processes share their
  socket.io rooms through Redis (python-socketio's AsyncRedisManager): a
  message for a session reaches its socket whichever process or instance
  sends it (an agent's words arrive through any instance's HTTP API).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Union

from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint
from socketio import AsyncRedisManager, AsyncServer  # type: ignore[import-untyped]

from bot_server.channels.common import (
    HUMAN_AGENT_KEY,
    MAX_SENDER_CHARS,
    PipelinedInput,
    human_agent_name,
    valid_id,
)
from bot_server.pipeline import replies
from settings import rasa_server_settings

logger = logging.getLogger(__name__)

BAD_MESSAGE_RESPONSE = "utter_bad_message"
# The Redis channel on which the Rasa processes pass socket.io messages on.
ROOMS_CHANNEL = "jiebei_socketio"


class AgentAwareSocketIOOutput(SocketIOOutput):
    """Rasa's socket.io output; a human agent's words say whose they are."""

    async def send_text_message(
        self, recipient_id: str, text: str, **kwargs: Any
    ) -> None:
        """The bot's text as Rasa sends it; an agent's in one piece, with the name."""
        name = human_agent_name(kwargs)
        if name is None:
            await super().send_text_message(recipient_id, text, **kwargs)
            return
        await self._send_message(
            recipient_id, {"text": text.strip(), HUMAN_AGENT_KEY: {"name": name}}
        )


def share_rooms(sio: AsyncServer, url: str) -> AsyncRedisManager:
    """Let every process's emits reach sockets held by the others (via Redis).

    Rasa builds the AsyncServer without a client manager; this swaps in
    python-socketio's AsyncRedisManager before any socket connects. Its
    listener is started with the server (``start_listening``), so that a
    reply to the first socket never goes out before the subscription.
    """
    manager = AsyncRedisManager(url, channel=ROOMS_CHANNEL)
    sio.manager = manager
    manager.set_server(sio)
    sio.manager_initialized = False
    return manager


def start_listening(sio: AsyncServer) -> None:
    """Start the client manager's Redis listener now (else: at the first connect)."""
    if not sio.manager_initialized:
        sio.manager_initialized = True
        sio.manager.initialize()


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

        state_url = rasa_server_settings().channel_state_url
        if state_url.startswith(("redis://", "rediss://")):
            share_rooms(sio, state_url)

            async def listen(app: Any, _: Any) -> None:
                start_listening(sio)

            blueprint.listener("after_server_start")(listen)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: str, data: Any = None) -> None:
            output = AgentAwareSocketIOOutput(sio, self.bot_message_evt)
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

    def get_output_channel(self) -> Optional[OutputChannel]:
        """For messages Rasa sends on its own (a human agent's, via the API)."""
        if self.sio is None:
            return None
        return AgentAwareSocketIOOutput(self.sio, self.bot_message_evt)

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
