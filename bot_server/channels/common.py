"""What our REST and socket.io channels add alike to Rasa's own two channels.

- :class:`PipelinedInput`: our Rasa patches installed when Rasa builds the
  channel, and Rasa's blueprint built around the inbound pipeline's handler;
- Sanic's body limit for every request (``MAX_REQUEST_BYTES``);
- which sender ids the stores can take;
- which bot messages are a human agent's (:func:`human_agent_name`).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

from rasa.core.channels.channel import InputChannel
from sanic import Blueprint, Sanic

from bot_server import rasa_patches
from bot_server.pipeline.compose import inbound_handler
from bot_server.pipeline.inbound import AppAgent, Handler
from settings import rasa_server_settings

logger = logging.getLogger(__name__)

MAX_SENDER_CHARS = 128
# The key of a bot message's metadata that marks a human agent's words
# (desk/relay.py puts {"id", "name"} there); every channel shows such a
# message as 人工客服 <name>, never as the bot's.
HUMAN_AGENT_KEY = "human_agent"
# The longest agent name shown (the desk's display names are short).
MAX_AGENT_NAME_CHARS = 32


def human_agent_name(message: Dict[str, Any]) -> Optional[str]:
    """The display name of the human agent who wrote a bot message.

    None when the message is the bot's; "" for an agent's message without a
    usable name (still shown as an agent's). ``message`` is what Rasa hands an
    output channel's ``send_*`` as keyword arguments: the bot event's data and
    metadata merged.
    """
    agent = message.get(HUMAN_AGENT_KEY)
    if not isinstance(agent, dict):
        return None
    name = agent.get("name")
    if not isinstance(name, str):
        return ""
    return " ".join(name.split())[:MAX_AGENT_NAME_CHARS]


def limit_request_size(blueprint: Blueprint) -> None:
    """Sanic's body limit for the whole server, once the app exists."""

    async def configure(app: Sanic, _: Any) -> None:
        app.config.REQUEST_MAX_SIZE = rasa_server_settings().max_request_bytes

    blueprint.listener("before_server_start")(configure)


def valid_id(value: str) -> bool:
    """A conversation id the stores can encode (no lone surrogates)."""
    return not any("\ud800" <= char <= "\udfff" for char in value)


class PipelinedInput(InputChannel):
    """One of Rasa's channels with our patches and the pipeline.

    Listed before Rasa's class: ``GuardedRestInput(PipelinedInput, RestInput)``.
    """

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        """Rasa builds its channels here at start-up: our patches go in first."""
        rasa_patches.install()
        return super().from_credentials(credentials)

    def pipelined_blueprint(
        self, on_new_message: Handler
    ) -> Tuple[Blueprint, Handler, AppAgent]:
        """Rasa's blueprint around the pipeline: (blueprint, handler, agent)."""
        agent = AppAgent()
        handler = inbound_handler(on_new_message, agent)
        blueprint = super().blueprint(handler)
        agent.bind(blueprint)
        limit_request_size(blueprint)
        return blueprint, handler, agent
