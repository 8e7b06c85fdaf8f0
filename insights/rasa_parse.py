"""Rasa's ``/model/parse``: what the model Rasa serves now makes of a message.

The review summary asks it for the "after" figure (how the current model labels
the reviewed messages). One module for this one call of the Rasa HTTP API, with
a timeout per request and a bound on the requests at once; no rasa import (the
page server stays light).

    parser = RasaParser("http://127.0.0.1:5005", token=None)
    parsed = await parser.parse("借呗咋没了")  # {"intent": {...}, ...}
    await parser.close()
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Iterable, Optional

import aiohttp

# Requests sent at once by parse_many: Rasa parses one message in a few ms;
# more at once only queue on its side.
CONCURRENCY = 4


class ParseError(Exception):
    """Rasa could not be asked or gave no intent; str() says why."""


class RasaParser:
    """Asks a Rasa server (``--enable-api``) to parse messages."""

    def __init__(
        self, base_url: str, token: Optional[str] = None, timeout_s: float = 5.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._session: Optional[aiohttp.ClientSession] = None

    async def parse(self, text: str) -> Dict[str, Any]:
        """What Rasa's model makes of ``text``: intent, ranking, response selector."""
        params = {"token": self.token} if self.token else {}
        try:
            async with self._client().post(
                f"{self.base_url}/model/parse", json={"text": text}, params=params
            ) as response:
                if response.status != 200:
                    raise ParseError(f"Rasa answered {response.status} to /model/parse")
                body = await response.json(content_type=None)
        except asyncio.TimeoutError:
            raise ParseError(
                f"Rasa did not answer /model/parse within {self.timeout_s:g} s"
            ) from None
        except (aiohttp.ClientError, ValueError) as error:
            raise ParseError(f"Rasa unreachable: {error}") from None
        intent = body.get("intent") if isinstance(body, dict) else None
        if not isinstance(intent, dict) or not isinstance(intent.get("name"), str):
            raise ParseError("Rasa's /model/parse gave no intent")
        return body

    async def parse_many(self, texts: Iterable[str]) -> Dict[str, Dict[str, Any]]:
        """Each distinct text parsed (a few at once); the first failure raises."""
        distinct = list(dict.fromkeys(texts))
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(text: str) -> Dict[str, Any]:
            async with gate:
                return await self.parse(text)

        results = await asyncio.gather(*(one(text) for text in distinct))
        return dict(zip(distinct, results, strict=True))

    async def close(self) -> None:
        """Close the connection pool (on the page server's shutdown)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self._session
