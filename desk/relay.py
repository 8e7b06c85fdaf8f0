"""The relay: puts an agent's words into the user's conversation (Rasa's HTTP API).

A small stand-in with the contract's signatures (the Rasa side's engineer
replaces it with the full version). Rasa runs with ``--enable-api`` (and
``--auth-token`` in prod, sent as ``?token=``); every call uses
``output_channel=latest`` so the user gets it on the channel they wrote on:

- ``message``: a ``bot`` event with ``metadata.human_agent = {id, name}``,
  appended with ``execute_side_effects`` (stored in the tracker AND sent);
- ``joined`` / ``resolved``: the domain responses ``utter_human_joined`` /
  ``utter_human_resolved``; ``resolved`` also resumes the conversation.

Any failure (unreachable, timeout, a non-2xx answer) raises RelayError.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, List, Optional, Union
from urllib.parse import quote

import aiohttp


class RelayError(Exception):
    """Rasa could not be reached or refused; str() says why."""


class RasaRelay:
    """Calls Rasa's HTTP API on behalf of the desk."""

    def __init__(
        self, base_url: str, token: Optional[str], timeout_s: float = 5.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._session: Optional[aiohttp.ClientSession] = None

    async def joined(
        self, conversation_id: str, agent_id: str, agent_name: str
    ) -> None:
        """Tell the user that an agent took the conversation."""
        await self._execute(conversation_id, "utter_human_joined")

    async def message(
        self, conversation_id: str, text: str, agent_id: str, agent_name: str
    ) -> None:
        """Send the agent's (masked) text as the agent's message."""
        event = {
            "event": "bot",
            "timestamp": time.time(),
            "text": text,
            "metadata": {"human_agent": {"id": agent_id, "name": agent_name}},
        }
        await self._post(
            f"/conversations/{quote(conversation_id, safe='')}/tracker/events",
            event,
            execute_side_effects="true",
        )

    async def resolved(
        self, conversation_id: str, agent_id: str, agent_name: str
    ) -> None:
        """Hand the conversation back to the bot."""
        await self._execute(conversation_id, "utter_human_resolved")
        await self._post(
            f"/conversations/{quote(conversation_id, safe='')}/tracker/events",
            {"event": "resume", "timestamp": time.time()},
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _execute(self, conversation_id: str, action: str) -> None:
        await self._post(
            f"/conversations/{quote(conversation_id, safe='')}/execute",
            {"name": action},
        )

    async def _post(
        self, path: str, body: Union[Dict[str, Any], List[Any]], **query: str
    ) -> None:
        params = {"output_channel": "latest", **query}
        if self.token:
            params["token"] = self.token
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        try:
            async with self._session.post(
                self.base_url + path, json=body, params=params
            ) as response:
                if response.status >= 300:
                    raise RelayError(f"Rasa answered {response.status} to {path}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise RelayError(f"Rasa unreachable: {error!r}") from None
