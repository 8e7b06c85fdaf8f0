"""Blocking service calls (SQL stores) from the actions' event loop, bounded in time."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, TypeVar

from settings import action_settings

T = TypeVar("T")


async def run_blocking(function: Callable[..., T], *args: Any) -> T:
    """Run a blocking service call in a worker thread, bounded by the timeout.

    Raises asyncio.TimeoutError when the service does not answer in time.
    """
    timeout = action_settings().lookup_timeout_s + 0.5
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.run_in_executor(None, function, *args), timeout)
