"""The chat page of `make serve`: the files in web/static/ and ``/config.json``.

A small static server (aiohttp) on 127.0.0.1:WEB_PORT. The page talks to Rasa's
socket.io channel itself (``RASA_PUBLIC_URL``); this server only tells it where
Rasa is, which profile runs and, in the demo profile, which fixture accounts
the demo switch offers. Every response carries strict headers: the page may
load nothing but its own files and connect nowhere but here and to Rasa.

``WEB_DEMO_LOGIN=1`` makes ``/config.json?as=<fixture id>`` hand out a signed
identity token (actions/identity.py) for that demo account: a stand-in for a
real host, which logs its user in and gives the page that user's token. It is
off unless set, and never offered for an account that is not a fixture.

Only web/static/ is served, and only the kinds of file a page is made of: this
module and anything else beside it can never be fetched.

    python -m web.server --host 127.0.0.1 --port 8080
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler

from actions import identity
from actions.services.accounts import fixture_labels
from actions.services.sql import StoreUnavailable
from settings import PageServerSettings, load, page_server_settings
from web import agent_api

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDORED_CLIENT = Path("vendor") / "socket.io.min.js"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
SOCKETIO_PATH = "/socket.io"

# The only kinds of file the page is made of; anything else (.py, .md, dot
# files) is not served, even if it were put into static/.
CONTENT_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".map": "application/json; charset=utf-8",
}
DEMO_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class PageSettings:
    """What the page server needs to know, read from the environment."""

    rasa_url: str = "http://127.0.0.1:5005"
    profile: str = "demo"
    # Signs demo-login tokens; set only when WEB_DEMO_LOGIN=1.
    demo_login_secret: Optional[str] = None
    # Fixture accounts: the demo switch (demo profile) and demo-login subjects.
    demo_accounts: Mapping[str, str] = field(default_factory=dict)
    static_dir: Path = STATIC_DIR

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> PageSettings:
        """From the declared settings (settings/); SettingsError names a bad one."""
        declared = (
            page_server_settings()
            if environ is None
            else load(PageServerSettings, environ)
        )
        return cls(
            rasa_url=declared.rasa_public_url,
            profile=declared.profile,
            demo_login_secret=(
                declared.identity_secret if declared.web_demo_login else None
            ),
            demo_accounts=fixture_labels(),
        )


def content_security_policy(rasa_url: str) -> str:
    """Own files only; connections to this server and to Rasa (HTTP and WebSocket)."""
    socket_origin = "ws" + rasa_url[len("http") :]  # http→ws, https→wss
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src 'self' {rasa_url} {socket_origin}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


SETTINGS = web.AppKey("settings", PageSettings)
CSP = web.AppKey("csp", str)


def page_config(settings: PageSettings, login_as: Optional[str]) -> Dict[str, Any]:
    """The body of /config.json; raises HTTPBadRequest for an unknown demo login."""
    config: Dict[str, Any] = {
        "rasa_url": settings.rasa_url,
        "socketio_path": SOCKETIO_PATH,
        "profile": settings.profile,
    }
    if settings.profile == "demo":
        config["demo_accounts"] = [
            {"id": account, "description": description}
            for account, description in settings.demo_accounts.items()
        ]
    if settings.demo_login_secret and login_as is not None:
        if not DEMO_ID.match(login_as) or login_as not in settings.demo_accounts:
            raise web.HTTPBadRequest(
                text='{"error": "demo login is for the fixture accounts only"}',
                content_type="application/json",
            )
        config["identity_token"] = identity.mint(login_as, settings.demo_login_secret)
        config["demo_login"] = login_as
    return config


async def config_json(request: web.Request) -> web.StreamResponse:
    """GET /config.json (``?as=<fixture id>`` only with WEB_DEMO_LOGIN=1)."""
    config = page_config(request.app[SETTINGS], request.query.get("as"))
    return web.json_response(config, headers={"Cache-Control": "no-store"})


async def static_file(request: web.Request) -> web.StreamResponse:
    """A file of the page; anything outside static/ or of another kind is a 404."""
    return file_response(request, request.match_info.get("name") or "index.html")


def file_response(request: web.Request, name: str) -> web.StreamResponse:
    """The file ``name`` of web/static/, if it is one the page is made of."""
    static_dir = request.app[SETTINGS].static_dir.resolve()
    path = (static_dir / name).resolve()
    content_type = CONTENT_TYPES.get(path.suffix)
    if (
        content_type is None
        or not path.is_relative_to(static_dir)
        or any(part.startswith(".") for part in path.relative_to(static_dir).parts)
        or not path.is_file()
    ):
        raise web.HTTPNotFound(text="404: 没有这个页面")
    return web.FileResponse(
        path, headers={"Content-Type": content_type, "Cache-Control": "no-cache"}
    )


@web.middleware
async def security_headers(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Strict headers on every response, errors (404, 405) included."""
    try:
        response = await handler(request)
    except web.HTTPException as error:
        error.headers.update(strict_headers(request.app[CSP]))
        raise
    response.headers.update(strict_headers(request.app[CSP]))
    return response


def strict_headers(csp: str) -> Dict[str, str]:
    """The headers every response carries."""
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }


async def console_page(request: web.Request) -> web.StreamResponse:
    """/agent/: the agent console's page (web/static/agent/index.html)."""
    if request.path == "/agent":
        raise web.HTTPFound("/agent/")
    return file_response(request, "agent/index.html")


def create_app(
    settings: PageSettings, desk: Optional[agent_api.Desk] = None
) -> web.Application:
    """The page server's application; with ``desk``, the agent desk's API too."""
    app = web.Application(
        middlewares=[security_headers, agent_api.api_errors],
        client_max_size=agent_api.CLIENT_MAX_SIZE,
    )
    app[SETTINGS] = settings
    app[CSP] = content_security_policy(settings.rasa_url)
    app.router.add_get("/config.json", config_json)
    if desk is not None:
        agent_api.setup(app, desk)
    app.router.add_get("/agent", console_page)
    app.router.add_get("/agent/", console_page)
    app.router.add_get("/", static_file)
    app.router.add_get("/{name:.+}", static_file)
    return app


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Serve the page until Ctrl-C; a bad setting exits 2 with one line."""
    parser = argparse.ArgumentParser(description="借呗助手 chat page server")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        settings = PageSettings.from_env()
        declared = page_server_settings()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    desk = agent_api.Desk.from_settings(declared)
    try:
        refusal = agent_api.prepare(desk.store, declared.profile)
    except StoreUnavailable as error:
        print(
            f"error: the agent desk cannot reach the case store: {error}",
            file=sys.stderr,
        )
        return 2
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    if declared.profile == "prod" and not declared.rasa_auth_token:
        logger.warning(
            "RASA_AUTH_TOKEN is not set: the agent desk cannot reach Rasa's API "
            "in the production profile (agents' messages will fail)"
        )
    if not (settings.static_dir / VENDORED_CLIENT).is_file():
        print(
            f"error: web/static/{VENDORED_CLIENT} is missing: run `make web`",
            file=sys.stderr,
        )
        return 2
    notes: List[str] = [
        f"profile {settings.profile}",
        f"Rasa {settings.rasa_url}",
        "agent desk /agent/",
    ]
    if settings.demo_login_secret:
        notes.append("WEB_DEMO_LOGIN on (?as=<fixture id>)")
    logger.info(
        "chat page on http://%s:%d/ (%s)", args.host, args.port, ", ".join(notes)
    )
    web.run_app(
        create_app(settings, desk),
        host=args.host,
        port=args.port,
        print=None,
        access_log=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
