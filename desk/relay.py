"""The agent desk's way into a user's conversation: Rasa's HTTP API.

The page server (web/agent_api.py) calls :class:`RasaRelay` when an agent
claims a case, writes, or resolves it. Everything goes through the Rasa
server's HTTP API (``rasa run --enable-api``; ``?token=`` with
``--auth-token``), so the desk needs no Rasa import and reaches the user on
whatever channel the user is on (``output_channel=latest``: the channel of
the user's latest message):

- :meth:`RasaRelay.joined`: the slot ``human_agent_name``, then the domain
  response ``utter_human_joined`` executed (Rasa runs an utter action on a
  paused conversation too);
- :meth:`RasaRelay.message`: a ``bot`` event with the agent's words and
  ``metadata.human_agent`` {id, name}, appended with ``execute_side_effects``:
  stored in the tracker (history and exports complete, marked with the agent
  id) and sent on the user's channel, which shows it as 人工客服 <name>
  (bot_server/channels/);
- :meth:`RasaRelay.resolved`: the slot, a ``resume`` event (the bot answers
  the next message again), then ``utter_human_resolved`` (the bot is back).

After an executed response an ``action_listen`` is appended, as Rasa's own
turn ends, so the next user message meets the rules as after any bot turn.
Every call is bounded by ``timeout_s``; a refused or failed call raises
:class:`RelayError` saying why.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, List, Optional
from urllib.parse import quote

import aiohttp

from bot_server.pipeline.gate import clean, mask_personal_data

JOINED_RESPONSE = "utter_human_joined"
RESOLVED_RESPONSE = "utter_human_resolved"
AGENT_NAME_SLOT = "human_agent_name"
# The key of a bot event's metadata that marks an agent's message (the
# channels render it as 人工客服 <name>; the desk's transcript reads it).
HUMAN_AGENT_KEY = "human_agent"
# Longest agent message sent (characters), as for a user's (MAX_MESSAGE_CHARS).
MAX_TEXT_CHARS = 2000
# How much of Rasa's error body a RelayError quotes.
ERROR_BODY_CHARS = 200


class RelayError(Exception):
    """Rasa could not be reached or refused the call; ``str()`` says why."""


class RasaRelay:
    """Puts the desk's words and decisions into users' conversations.

    Args:
        base_url: the Rasa server, e.g. ``http://127.0.0.1:5005``.
        token: the API's ``--auth-token``, or None when it has none.
        timeout_s: the longest one HTTP call may take.
    """

    def __init__(
        self, base_url: str, token: Optional[str], timeout_s: float = 5.0
    ) -> None:
        """One relay (one pool of connections) per page server."""
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._session: Optional[aiohttp.ClientSession] = None

    async def joined(
        self, conversation_id: str, agent_id: str, agent_name: str
    ) -> None:
        """Tell the user that the agent has taken the conversation."""
        await self._append(conversation_id, [_slot(AGENT_NAME_SLOT, agent_name)])
        await self._execute(conversation_id, JOINED_RESPONSE)

    async def message(
        self, conversation_id: str, text: str, agent_id: str, agent_name: str
    ) -> None:
        """Send the agent's words to the user, stored in the tracker as the agent's.

        Personal data in them is masked as in a user's message
        (bot_server/pipeline/gate.py) before Rasa stores or sends them.
        ValueError for an empty text.
        """
        words = mask_personal_data(clean(text)).text.strip()[:MAX_TEXT_CHARS]
        if not words:
            raise ValueError("the message is empty")
        event = {
            "event": "bot",
            "text": words,
            "metadata": {HUMAN_AGENT_KEY: {"id": agent_id, "name": agent_name}},
        }
        await self._append(conversation_id, [event], side_effects=True)

    async def resolved(
        self, conversation_id: str, agent_id: str, agent_name: str
    ) -> None:
        """Hand the conversation back to the bot, which tells the user it is back."""
        await self._append(
            conversation_id,
            [_slot(AGENT_NAME_SLOT, agent_name), {"event": "resume"}],
        )
        await self._execute(conversation_id, RESOLVED_RESPONSE)

    async def close(self) -> None:
        """Close the HTTP connections (the page server's shutdown)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- Rasa's HTTP API -----------------------------------------------------
    async def _append(
        self,
        conversation_id: str,
        events: List[Dict[str, Any]],
        side_effects: bool = False,
    ) -> None:
        params = {"output_channel": "latest"}
        if side_effects:
            params["execute_side_effects"] = "true"
        await self._post(conversation_id, "tracker/events", events, params)

    async def _execute(self, conversation_id: str, action: str) -> None:
        await self._post(
            conversation_id, "execute", {"name": action}, {"output_channel": "latest"}
        )
        await self._append(
            conversation_id, [{"event": "action", "name": "action_listen"}]
        )

    async def _post(
        self,
        conversation_id: str,
        path: str,
        body: Any,
        params: Dict[str, str],
    ) -> None:
        if not conversation_id:
            raise ValueError("no conversation id")
        if self.token:
            params = {**params, "token": self.token}
        url = f"{self.base_url}/conversations/{quote(conversation_id, safe='')}/{path}"
        what = f"{path} of conversation {conversation_id}"
        try:
            async with self._client().post(url, json=body, params=params) as answer:
                if answer.status >= 400:
                    detail = _error_detail(await answer.text())
                    raise RelayError(
                        f"Rasa refused {what}: HTTP {answer.status}"
                        + (f" ({detail})" if detail else "")
                    )
                await answer.read()
        except asyncio.TimeoutError:
            raise RelayError(
                f"Rasa did not answer {what} within {self.timeout_s:g} s"
            ) from None
        except aiohttp.ClientError as error:
            raise RelayError(
                f"Rasa unreachable at {self.base_url} ({what}): "
                f"{error.__class__.__name__}: {error}"
            ) from None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self._session


def _slot(name: str, value: Any) -> Dict[str, Any]:
    return {"event": "slot", "name": name, "value": value}


def _error_detail(body: str) -> str:
    """Rasa's ``message`` (its error JSON), or the start of the body."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("message"):
        return str(parsed["message"])[:ERROR_BODY_CHARS]
    return body.strip()[:ERROR_BODY_CHARS]
