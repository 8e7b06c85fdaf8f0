"""Rasa's REST channel, its requests checked, behind the inbound pipeline.

Same name, URL and payload as Rasa's own (``/webhooks/rest/webhook``);
credentials.yml names this class instead of ``rest:``. What it adds to Rasa's:

- the request is checked before Rasa reads it. A body that is not UTF-8
  JSON, not an object, lacks a string ``sender`` (1..128 characters) or a
  string ``message``, or comes with another content type gets a 4xx with a
  JSON ``{"error": ...}`` naming the problem (Rasa answered most of these with
  a 500, and a missing sender put the message into a shared "default"
  conversation). Bodies over ``REST_MAX_BODY_BYTES`` (256 KiB) get 413. A
  client can no longer name the input channel (Rasa took ``input_channel``
  from the body);
- every request to the server: Sanic's body limit becomes
  ``MAX_REQUEST_BYTES`` (1 MiB; Sanic's default is 100 MB);
- every message passes the inbound pipeline (bot_server/pipeline/).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Optional, Union

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from bot_server.channels.common import (
    MAX_SENDER_CHARS,
    PipelinedInput,
    valid_id,
)
from settings import rasa_server_settings

logger = logging.getLogger(__name__)


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


class GuardedRestInput(PipelinedInput, RestInput):
    """Rasa's REST channel; every message gets an answer, bad requests a 4xx."""

    @classmethod
    def name(cls) -> str:
        """Rasa's name, so the URL stays /webhooks/rest/webhook."""
        return "rest"

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[None]]
    ) -> Blueprint:
        """Rasa's blueprint around the pipeline's handler, behind the request check."""
        blueprint, _, _ = self.pipelined_blueprint(on_new_message)
        max_bytes = rasa_server_settings().rest_max_body_bytes

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

        return blueprint
