"""One user message on its way through the pipeline, and what a stage is.

A stage is ``async def stage(inbound, then)``: it checks or changes the
message, answers the user itself if need be, and calls ``then(inbound)`` to
hand the message on, or returns without calling it to stop it there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

from bot_server.pipeline import replies

if TYPE_CHECKING:  # Rasa is imported by whoever builds a message
    from rasa.core.channels.channel import OutputChannel, UserMessage
    from sanic import Blueprint, Sanic

# Rasa's on_new_message, and what the pipeline gives each channel instead.
Handler = Callable[["UserMessage"], Awaitable[Any]]
AgentGetter = Callable[[], Any]


@dataclass
class Inbound:
    """A user message and the agent that will handle it (None: no model loaded)."""

    message: UserMessage
    agent: Any

    @property
    def sender(self) -> str:
        """The conversation id."""
        return self.message.sender_id or "default"

    @property
    def channel(self) -> OutputChannel:
        """Where the bot's answers to this message go."""
        return self.message.output_channel

    @property
    def source(self) -> str:
        """The input channel's name (the rate limit counts per channel)."""
        return self.message.input_channel or self.channel.name()

    async def answer(self, response: str, **values: Any) -> None:
        """Send one of the pipeline's own domain responses to this sender."""
        reply = await replies.render_answer(
            self.agent, response, self.sender, self.channel.name(), **values
        )
        await self.channel.send_response(self.sender, reply)


Next = Callable[[Inbound], Awaitable[None]]
Stage = Callable[[Inbound, Next], Awaitable[None]]


class AppAgent:
    """Rasa's agent, read for each message from the app that serves a channel.

    The one place the server looks the agent up. Rasa's InputChannel API gives
    a channel only ``on_new_message`` (a closure over the Sanic app), never the
    agent: Rasa loads the agent after the channels' blueprints exist, and
    replaces it when a new model is loaded (``PUT /model``), so it is read
    from ``app.ctx.agent`` when a message arrives. The app is the one the
    blueprint is registered on (its start-up listener), not a global lookup.
    """

    def __init__(self) -> None:
        self.app: Optional[Sanic] = None

    def bind(self, blueprint: Blueprint) -> None:
        """Learn the app when the server that serves ``blueprint`` starts."""

        async def remember(app: Sanic, _: Any) -> None:
            self.app = app

        blueprint.listener("before_server_start")(remember)

    def __call__(self) -> Any:
        """The agent, or None (server not started, or no model loaded yet)."""
        return getattr(getattr(self.app, "ctx", None), "agent", None)
