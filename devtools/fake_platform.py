"""A local fake of the WeCom and WeChat Official Account HTTP APIs.

Serves the token endpoints and the two send endpoints the channels use, checks
credentials and access tokens like the platforms do (errcode 40001 / 40014),
and records every message sent. Switches make it expire a token, fail or be slow.
Runs in the test's event loop (``start``) or in a thread of its own for the
end-to-end tests (``in_thread``), where the real Rasa server calls it.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional

from aiohttp import web

WECOM_SEND = "/cgi-bin/message/send"
WECHAT_SEND = "/cgi-bin/message/custom/send"


@dataclass
class Sent:
    """One message the channel sent through the API."""

    path: str
    body: Dict[str, Any]

    @property
    def user(self) -> str:
        """The user the message went to."""
        return str(self.body.get("touser"))

    @property
    def text(self) -> str:
        """The text of a text message (``None`` as text for other kinds)."""
        return str((self.body.get("text") or {}).get("content"))


@dataclass
class FakePlatform:
    """Both platforms' APIs: credentials it accepts, tokens it issued, what was sent."""

    corp_id: str = "ww_test_corp"
    corp_secret: str = "wecom-secret"
    app_id: str = "wx_test_app"
    app_secret: str = "wechat-secret"
    sent: List[Sent] = field(default_factory=list)
    token_fetches: int = 0
    # errcodes answered (once each) to the next send calls; 42001 also expires
    # the current token, as the platform's own expiry would.
    send_errors: List[int] = field(default_factory=list)
    http_status: int = 200
    delay_s: float = 0.0
    base_url: str = ""
    _tokens: Dict[str, str] = field(default_factory=dict)
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _runner: Optional[web.AppRunner] = None

    # -- endpoints ------------------------------------------------------------
    async def _pause(self) -> Optional[web.Response]:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.http_status != 200:
            return web.Response(status=self.http_status, text="down")
        return None

    def _issue(self, platform: str) -> web.Response:
        self.token_fetches += 1
        token = f"{platform}-token-{next(self._counter)}"
        self._tokens[platform] = token
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}
        )

    async def wecom_token(self, request: web.Request) -> web.Response:
        """WeCom's ``gettoken``: a new access token for the right corp id and secret."""
        failed = await self._pause()
        if failed is not None:
            return failed
        query = request.query
        if (query.get("corpid"), query.get("corpsecret")) != (
            self.corp_id,
            self.corp_secret,
        ):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        return self._issue("wecom")

    async def wechat_stable_token(self, request: web.Request) -> web.Response:
        """The Official Account's ``stable_token`` (POST JSON).

        In normal mode the current access token while there is one, else (or
        with ``force_refresh``) a new one.
        """
        failed = await self._pause()
        if failed is not None:
            return failed
        body = await request.json()
        if (
            body.get("grant_type") != "client_credential"
            or body.get("appid") != self.app_id
            or body.get("secret") != self.app_secret
        ):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        current = self._tokens.get("wechat")
        if current is None or body.get("force_refresh"):
            return self._issue("wechat")
        self.token_fetches += 1
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": current, "expires_in": 7200}
        )

    async def _send(self, request: web.Request, platform: str) -> web.Response:
        failed = await self._pause()
        if failed is not None:
            return failed
        if request.query.get("access_token") != self._tokens.get(platform):
            return web.json_response(
                {"errcode": 40014, "errmsg": "invalid access_token"}
            )
        if self.send_errors:
            code = self.send_errors.pop(0)
            if code == 42001:
                self._tokens.pop(platform, None)
            return web.json_response({"errcode": code, "errmsg": "refused"})
        self.sent.append(Sent(request.path, await request.json()))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def wecom_send(self, request: web.Request) -> web.Response:
        """WeCom's message send: recorded when the token is the current one."""
        return await self._send(request, "wecom")

    async def wechat_send(self, request: web.Request) -> web.Response:
        """The Official Account's customer-service send, recorded likewise."""
        return await self._send(request, "wechat")

    # -- running --------------------------------------------------------------
    async def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (a free port by default); returns the base URL."""
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self.wecom_token)
        app.router.add_post("/cgi-bin/stable_token", self.wechat_stable_token)
        app.router.add_post(WECOM_SEND, self.wecom_send)
        app.router.add_post(WECHAT_SEND, self.wechat_send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{bound}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving (started with ``start``)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_sent(self, count: int, timeout_s: float = 10.0) -> List[Sent]:
        """The messages sent so far, once there are at least ``count``."""
        deadline = time.monotonic() + timeout_s
        while len(self.sent) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return list(self.sent)

    def wait_until(
        self, predicate: Callable[[List[Sent]], bool], timeout_s: float
    ) -> List[Sent]:
        """Blocking: poll (from another thread) until ``predicate`` holds."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            snapshot = list(self.sent)
            if predicate(snapshot):
                return snapshot
            time.sleep(0.2)
        return list(self.sent)

    @contextmanager
    def in_thread(self) -> Iterator[str]:
        """Serve from a thread with its own event loop; yields the base URL."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            yield asyncio.run_coroutine_threadsafe(self.start(), loop).result(10)
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
