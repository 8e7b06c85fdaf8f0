"""Serving channels on a real Sanic app in the test's event loop, as Rasa does."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Sequence

from rasa.core.channels.channel import InputChannel, register
from sanic import Sanic

from devtools.servers import free_port


def new_app(name: str) -> Sanic:
    """A fresh Sanic app; several may run in one test process."""
    # Sanic rewrites its own methods when an app starts; in test mode it keeps
    # the originals, so that several apps can start in one process.
    Sanic.test_mode = True
    return Sanic(f"{name}_{uuid.uuid4().hex[:12]}")


@asynccontextmanager
async def running(app: Sanic) -> AsyncIterator[str]:
    """``app`` served on a free port, its start-up listeners run; yields its URL."""
    port = free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    assert server is not None
    await server.startup()
    await server.before_start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()


@asynccontextmanager
async def served_like_rasa(
    channels: Sequence[InputChannel], agent: Any
) -> AsyncIterator[str]:
    """The channels mounted as `rasa run` mounts them, ``agent`` as the app's agent.

    Yields the base URL of the webhooks (``.../webhooks``).
    """
    app = new_app("rasa_like")
    app.ctx.agent = agent
    register(list(channels), app, route="/webhooks/")
    async with running(app) as url:
        yield f"{url}/webhooks"
