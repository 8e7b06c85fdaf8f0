"""Sending text through the WeCom and WeChat Official Account HTTP APIs.

Both platforms work alike: an access token from a token endpoint (valid about
two hours, to be cached: the token endpoints are rate-limited), then a JSON
POST with ``?access_token=``. A token the platform says is invalid or expired
(errcode 40001, 40014, 42001) is fetched again once and the send retried.

Several Rasa processes (workers, replicas) each cache a token, so fetching
must not invalidate the others' tokens. WeCom's ``gettoken`` returns the same
token while it lives. The Official Account's plain ``token`` endpoint would
issue a new one each time and the previous one would die 5 minutes later, so
we use its ``stable_token`` endpoint (normal mode): the same token while it
lives, whichever process asks.

The base URL is a setting (``WECOM_API_BASE`` / ``WECHAT_API_BASE``, read by
the channel modules): the tests point it at a local fake of these APIs, and
nothing else switches between fake and real. Every request has a timeout.
Errors never include URLs: they carry the secret or the access token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Tuple

import aiohttp

logger = logging.getLogger(__name__)

WECOM_API_BASE = "https://qyapi.weixin.qq.com"
WECHAT_API_BASE = "https://api.weixin.qq.com"
DEFAULT_TIMEOUT_S = 5.0
# errcodes that mean "fetch a new access token": invalid credential / invalid
# access_token / access_token expired.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# Refresh this long before the platform's expiry, so a token is never used at
# the very end of its life.
TOKEN_MARGIN_S = 300
# Both platforms cap a text message at 2048 bytes.
MAX_TEXT_BYTES = 2048


class ApiError(Exception):
    """The platform API refused a call or could not be reached."""

    def __init__(self, message: str, errcode: Optional[int] = None) -> None:
        super().__init__(message)
        self.errcode = errcode


TokenFetcher = Callable[[], Awaitable[Tuple[str, int]]]


@dataclass(frozen=True)
class TokenRequest:
    """How a platform's token endpoint is called."""

    method: str
    path: str
    params: Dict[str, str]
    body: Optional[Dict[str, Any]] = None


class AccessTokenCache:
    """One access token, fetched when missing, expired or invalidated.

    Concurrent callers share one fetch (the token endpoints are rate-limited).
    """

    def __init__(
        self,
        fetch: TokenFetcher,
        clock: Callable[[], float] = time.monotonic,
        margin_s: float = TOKEN_MARGIN_S,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin_s = margin_s
        self._token: Optional[str] = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """A token valid for at least the margin (fetching one if needed)."""
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                token, expires_in = await self._fetch()
                life = max(float(expires_in) - self._margin_s, expires_in / 2)
                self._token, self._expires_at = token, self._clock() + life
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (if still current): the platform refused it."""
        if token == self._token:
            self._token = None


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> List[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes (cut at line ends)."""
    pieces: List[str] = []
    rest = text
    while len(rest.encode("utf-8")) > limit:
        cut = len(rest.encode("utf-8")[:limit].decode("utf-8", "ignore"))
        newline = rest.rfind("\n", 0, cut)
        if newline > 0:
            cut = newline
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest:
        pieces.append(rest)
    return pieces


class PlatformApi:
    """What the WeCom and Official Account APIs share (token cache, HTTP, retry)."""

    send_path = ""

    def __init__(self, base_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.tokens = AccessTokenCache(self._fetch_token)
        self._session: Optional[aiohttp.ClientSession] = None

    # -- the two platforms differ only here ---------------------------------
    def token_request(self) -> TokenRequest:
        """The call of the token endpoint."""
        raise NotImplementedError

    def text_body(self, user: str, content: str) -> Dict[str, Any]:
        """JSON body that sends ``content`` to ``user``."""
        raise NotImplementedError

    # -----------------------------------------------------------------------
    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self._session

    async def close(self) -> None:
        """Close the HTTP session (on server stop)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        try:
            async with self._client().request(
                method, self.base_url + path, params=params, json=body
            ) as response:
                if response.status != 200:
                    raise ApiError(f"{path}: HTTP {response.status}")
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            # str(error) may hold the URL with the secret or token: name only.
            raise ApiError(f"{path}: {type(error).__name__}") from None
        if not isinstance(data, dict):
            raise ApiError(f"{path}: answer is not a JSON object")
        return data

    async def _fetch_token(self) -> Tuple[str, int]:
        request = self.token_request()
        path = request.path
        data = await self._call(request.method, path, request.params, request.body)
        token, expires_in = data.get("access_token"), data.get("expires_in", 7200)
        if _errcode(data) != 0 or not isinstance(token, str) or not token:
            raise ApiError(
                f"{path}: no access token (errcode {_errcode(data)}, "
                f"{data.get('errmsg', '')})",
                _errcode(data),
            )
        if not isinstance(expires_in, int) or expires_in <= 0:
            expires_in = 7200
        return token, expires_in

    async def send_text(self, user: str, content: str) -> None:
        """Send one text message (≤ MAX_TEXT_BYTES); raise ApiError on failure."""
        for attempt in (1, 2):
            token = await self.tokens.get()
            data = await self._call(
                "POST",
                self.send_path,
                {"access_token": token},
                self.text_body(user, content),
            )
            code = _errcode(data)
            if code == 0:
                self._check_delivery(data)
                return
            if code in TOKEN_ERRCODES and attempt == 1:
                logger.info(
                    "%s: access token refused (%s), fetching a new one",
                    self.send_path,
                    code,
                )
                self.tokens.invalidate(token)
                continue
            raise ApiError(
                f"{self.send_path}: errcode {code} {data.get('errmsg', '')}", code
            )

    def _check_delivery(self, data: Mapping[str, Any]) -> None:
        """Log what a successful call reports as undelivered (WeCom)."""


def _errcode(data: Mapping[str, Any]) -> int:
    code = data.get("errcode", 0)
    return code if isinstance(code, int) else -1


class WeComApi(PlatformApi):
    """WeCom self-built app: ``gettoken`` and ``message/send``."""

    send_path = "/cgi-bin/message/send"

    def __init__(
        self,
        corp_id: str,
        secret: str,
        agent_id: int,
        base_url: str = WECOM_API_BASE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(base_url, timeout_s)
        self.corp_id, self._secret, self.agent_id = corp_id, secret, agent_id

    def token_request(self) -> TokenRequest:
        """``GET /cgi-bin/gettoken?corpid=&corpsecret=``.

        The same token while it lives, for every caller.
        """
        return TokenRequest(
            "GET",
            "/cgi-bin/gettoken",
            {"corpid": self.corp_id, "corpsecret": self._secret},
        )

    def text_body(self, user: str, content: str) -> Dict[str, Any]:
        """A text message from our app to one member."""
        return {
            "touser": user,
            "msgtype": "text",
            "agentid": self.agent_id,
            "text": {"content": content},
        }

    def _check_delivery(self, data: Mapping[str, Any]) -> None:
        if data.get("invaliduser"):
            logger.warning("WeCom did not deliver to %s", data.get("invaliduser"))


class OfficialAccountApi(PlatformApi):
    """WeChat Official Account: ``stable_token``, customer-service messages."""

    send_path = "/cgi-bin/message/custom/send"

    def __init__(
        self,
        app_id: str,
        secret: str,
        base_url: str = WECHAT_API_BASE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(base_url, timeout_s)
        self.app_id, self._secret = app_id, secret

    def token_request(self) -> TokenRequest:
        """``POST /cgi-bin/stable_token`` in normal mode (``force_refresh`` false).

        The current token while it lives, so another process's fetch never
        invalidates ours (the plain ``/cgi-bin/token`` would).
        """
        body = {
            "grant_type": "client_credential",
            "appid": self.app_id,
            "secret": self._secret,
            "force_refresh": False,
        }
        return TokenRequest("POST", "/cgi-bin/stable_token", {}, body)

    def text_body(self, user: str, content: str) -> Dict[str, Any]:
        """A customer-service text message to one follower (openid)."""
        return {"touser": user, "msgtype": "text", "text": {"content": content}}
