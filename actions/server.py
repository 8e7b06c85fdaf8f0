"""The action server: rasa_sdk's, answering only the Rasa server.

``python -m actions.server --port 5055`` replaces ``rasa run actions``. The
custom actions read account data, so nobody but the Rasa server may call them:

- ``ACTION_SERVER_TOKEN``: a shared secret (at least 32 characters;
  declared in settings/ with the checks below). Every
  request but ``GET /health`` must carry it in the ``X-Action-Token`` header
  (endpoints*.yml make Rasa send it); otherwise 401. Compared in constant
  time.
- ``ACTION_SERVER_HOST``: the address to bind, ``127.0.0.1`` by default. The
  server refuses to start on any other address without a token, and in the
  production profile (``BOT_PROFILE=prod``) without a token at all.

rasa_sdk itself binds 0.0.0.0 with CORS ``*`` and no authentication; here CORS
is off (no browser has any business with this server).

``GET /calls`` (token required like the rest) answers how many actions the
server has run since it started: every call is an HTTP round trip from Rasa
carrying the whole tracker, so `make bench` divides it by the user messages
sent ("actions per user turn").
"""

from __future__ import annotations

import hmac
import logging
import sys
from typing import Optional, Sequence

from rasa_sdk import utils
from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
from rasa_sdk.endpoint import create_app, create_argument_parser
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, json

from settings import (
    ActionServerSettings,
    SettingsError,
    action_server_settings,
    action_settings,
)

logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Action-Token"
OPEN_PATHS = frozenset({"/health"})
WEBHOOK_PATH = "/webhook"


def authorised(given: Optional[str], token: Optional[str]) -> bool:
    """Whether a request's header matches the secret (any, when there is none)."""
    if token is None:
        return True
    return hmac.compare_digest((given or "").encode(), token.encode())


def build_app(settings: ActionServerSettings, package: str = "actions") -> Sanic:
    """rasa_sdk's app for ``package`` behind the token check, without CORS."""
    app = create_app(package, cors_origins=None)
    # One worker process (main() runs workers=1), so a plain counter is exact.
    calls = {"total": 0}

    @app.middleware("request")
    async def require_token(request: Request) -> Optional[HTTPResponse]:
        if request.path in OPEN_PATHS:
            return None
        if authorised(request.headers.get(TOKEN_HEADER), settings.token):
            if request.path == WEBHOOK_PATH:
                calls["total"] += 1
            return None
        logger.warning("refused a call to %s without the action token", request.path)
        return json({"error": f"Missing or wrong {TOKEN_HEADER} header."}, status=401)

    @app.get("/calls")
    async def served(_request: Request) -> HTTPResponse:
        return json(calls)

    return app


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse rasa_sdk's options, check the settings, serve."""
    args = create_argument_parser().parse_args(argv)
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(
        logging.getLogger(APPLICATION_ROOT_LOGGER_NAME),
        args.log_file,
        args.loglevel,
        args.logging_config_file,
    )
    utils.update_sanic_log_level()
    try:
        settings = action_server_settings()
        action_settings()  # the actions' own settings: refuse now, not mid-chat
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app = build_app(settings, args.actions or "actions")
    logger.info(
        "Action server on http://%s:%s (%s)",
        settings.host,
        args.port,
        "token required" if settings.token else "loopback only, no token",
    )
    app.run(settings.host, args.port, workers=1, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
