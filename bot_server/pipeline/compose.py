"""The one place the pipeline's stages are put in order: rate limit, gate, guard.

Every channel wraps Rasa's ``on_new_message`` with :func:`inbound_handler` and
hands Rasa's blueprint the result, so every message of every channel passes
the same stages in the same order before Rasa handles it.
"""

from __future__ import annotations

from typing import Sequence, Tuple

from rasa.core.channels.channel import UserMessage

from bot_server.pipeline.gate import apply_gate
from bot_server.pipeline.guard import guard
from bot_server.pipeline.inbound import AgentGetter, Handler, Inbound, Next, Stage
from bot_server.pipeline.ratelimit import limit_rate

# The rate limit first: a flood costs one counter lookup, not a gate run; the
# gate before the guard: what Rasa, its stores and its logs see is gated text.
STAGES: Tuple[Stage, ...] = (limit_rate, apply_gate, guard)


def chain(stages: Sequence[Stage], last: Next) -> Next:
    """``stages`` in order, each handing on to the next, ``last`` at the end."""

    def link(stage: Stage, then: Next) -> Next:
        async def run(inbound: Inbound) -> None:
            await stage(inbound, then)

        return run

    handler = last
    for stage in reversed(stages):
        handler = link(stage, handler)
    return handler


def inbound_handler(on_new_message: Handler, agent: AgentGetter) -> Handler:
    """Rasa's ``on_new_message`` behind the pipeline; ``agent`` is read per message."""

    async def to_rasa(inbound: Inbound) -> None:
        await on_new_message(inbound.message)

    pipeline = chain(STAGES, to_rasa)

    async def handle(message: UserMessage) -> None:
        await pipeline(Inbound(message, agent()))

    return handle
