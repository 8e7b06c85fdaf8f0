"""The agent desk's HTTP API: JSON under /agent/api/ (docs/agent-desk.md).

Thin handlers over desk/: the store (agents, sessions, audit, the cases' desk
state), the transcripts (Rasa's tracker store) and the relay (Rasa's HTTP API,
which puts an agent's words into the user's conversation).

- Sign-in: ``POST login`` sets the ``jiebei_desk`` cookie (HttpOnly,
  SameSite=Strict, Path=/agent, Secure with DESK_COOKIE_SECURE=1) and returns
  the session's CSRF token; failed sign-ins are limited per username and per
  client address (the ``limits`` library); 429 past the limit.
- Every other call needs the cookie's live session (401), every POST also the
  ``X-CSRF-Token`` header (403). Only the holder of an active case may write
  to it, unclaim, transfer or resolve it (403; 409 when it is not active).
- Bad input is a 4xx JSON ``{"error": ...}``, never a 500; the database
  unreachable is a 503, Rasa unreachable a 502 (and the change that needed
  Rasa is not made).

Blocking work (SQL, argon2) runs in threads, so one slow query does not stall
the page server's other requests.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    NoReturn,
    Optional,
    Protocol,
    Type,
    TypeVar,
)

from aiohttp import web
from aiohttp.typedefs import Handler
from limits import RateLimitItem, parse_many, strategies
from limits.storage import Storage, storage_from_string

from actions.services.sql import StoreUnavailable
from bot_server.pipeline.gate import clean, mask_personal_data
from desk.relay import RasaRelay, RelayError
from desk.store import (
    Agent,
    CaseConflict,
    CaseNotFound,
    DeskStore,
    NotHolder,
    Session,
    UnknownAgent,
)
from desk.transcript import TranscriptReader
from settings import PageServerSettings

logger = logging.getLogger(__name__)

API = "/agent/api"
COOKIE = "jiebei_desk"
COOKIE_PATH = "/agent"
CSRF_HEADER = "X-CSRF-Token"
CASE_STATUSES = ("waiting", "active", "resolved")
CASE_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
MAX_TEXT_CHARS = 2000
# An API body: a 2000-character message even with every character escaped.
MAX_BODY_BYTES = 32 * 1024
# The page server's limit for any request body (aiohttp's client_max_size).
CLIENT_MAX_SIZE = 64 * 1024
MAX_USERNAME_CHARS = 64
MAX_PASSWORD_CHARS = 256
LIMIT_NAMESPACE = "jiebei-desk-login"
# Argon2 takes 64 MiB and a few tens of ms per check: at most this many at once.
HASH_CONCURRENCY = 2
# The live stream: how often it looks at SQL, re-checks the session, and sends
# a comment line so that proxies keep it open and a gone client is noticed.
POLL_S = 0.5
SESSION_CHECK_S = 10.0
KEEPALIVE_S = 15.0

RELAY_DOWN = (
    "无法联系机器人服务器，消息未送达，请稍后再试 (cannot reach the bot server)"
)
STORE_DOWN = "案件库暂时无法访问，请稍后再试 (the case store is unavailable)"
WRONG_LOGIN = "用户名或密码错误 (wrong username or password)"
NO_SESSION = "请先登录 (sign in first)"
BAD_CSRF = "缺少或错误的 X-CSRF-Token (missing or wrong CSRF token)"

T = TypeVar("T")


class Relay(Protocol):
    """What the desk needs of desk/relay.py's RasaRelay (tests give a fake)."""

    async def joined(
        self, conversation_id: str, agent_id: str, agent_name: str
    ) -> None:
        """An agent took the conversation."""

    async def message(
        self, conversation_id: str, text: str, agent_id: str, agent_name: str
    ) -> None:
        """An agent's words to the user."""

    async def resolved(
        self, conversation_id: str, agent_id: str, agent_name: str
    ) -> None:
        """Back to the bot."""

    async def close(self) -> None:
        """Release connections."""


class LoginLimit:
    """Failed sign-ins per username and per client address (moving windows).

    Only failures count; past either limit every attempt is refused (429),
    the right password too, until the window has room again. When the
    storage fails (Redis down) sign-in is let through and the error logged,
    as the Rasa server's rate limit does.
    """

    def __init__(
        self,
        per_username: str,
        per_address: str,
        storage: Storage,
    ) -> None:
        self.per_username: List[RateLimitItem] = parse_many(per_username)
        self.per_address: List[RateLimitItem] = parse_many(per_address)
        # The limiter holds only a weak reference to its storage.
        self.storage = storage
        self.limiter = strategies.MovingWindowRateLimiter(storage)

    @classmethod
    def from_url(cls, per_username: str, per_address: str, url: str) -> LoginLimit:
        """Over ``memory://`` or ``redis://`` (short timeouts)."""
        options: Dict[str, Any] = {}
        if url.startswith(("redis://", "rediss://")):
            options = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
        return cls(per_username, per_address, storage_from_string(url, **options))

    def _keys(
        self, username: str, address: str
    ) -> List[tuple[RateLimitItem, str, str]]:
        return [(item, "user", username) for item in self.per_username] + [
            (item, "address", address) for item in self.per_address
        ]

    def retry_after(self, username: str, address: str) -> Optional[int]:
        """Seconds to wait if a limit is used up, else None."""
        try:
            for item, kind, key in self._keys(username, address):
                if not self.limiter.test(item, LIMIT_NAMESPACE, kind, key):
                    reset, _ = self.limiter.get_window_stats(
                        item, LIMIT_NAMESPACE, kind, key
                    )
                    return max(1, int(reset - time.time()))
        except Exception as error:
            logger.error("desk sign-in limit unavailable, not limiting: %s", error)
        return None

    def failed(self, username: str, address: str) -> None:
        """Count a failed sign-in."""
        try:
            for item, kind, key in self._keys(username, address):
                self.limiter.hit(item, LIMIT_NAMESPACE, kind, key)
        except Exception as error:
            logger.error("desk sign-in limit unavailable, not counted: %s", error)


@dataclass
class Desk:
    """What the desk's handlers work with (web/server.py builds it from settings)."""

    store: DeskStore
    transcripts: TranscriptReader
    relay: Relay
    login_limit: LoginLimit
    profile: str = "demo"
    cookie_secure: bool = False
    poll_s: float = POLL_S
    session_check_s: float = SESSION_CHECK_S
    keepalive_s: float = KEEPALIVE_S
    hash_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(HASH_CONCURRENCY)
    )

    @classmethod
    def from_settings(
        cls, settings: PageServerSettings, relay: Optional[Relay] = None
    ) -> Desk:
        """The desk of the page server's settings."""
        return cls(
            store=DeskStore(
                settings.case_store_url,
                idle_minutes=settings.desk_session_idle_minutes,
            ),
            transcripts=TranscriptReader(settings.tracker_db_url),
            relay=relay or RasaRelay(settings.rasa_api_url, settings.rasa_auth_token),
            login_limit=LoginLimit.from_url(
                settings.desk_login_limit,
                settings.desk_login_address_limit,
                settings.rate_limit_storage_url,
            ),
            profile=settings.profile,
            cookie_secure=settings.desk_cookie_secure,
        )


DESK = web.AppKey("desk", Desk)
STOPPING = web.AppKey("desk_stopping", asyncio.Event)


# --------------------------------------------------------------------------- errors


def fail(kind: Type[web.HTTPException], message: str, **extra: Any) -> NoReturn:
    """Stop the request with a JSON error."""
    raise kind(
        text=json.dumps({"error": message, **extra}, ensure_ascii=False),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under /agent/api/: every error as JSON; the store down is 503, never a 500."""
    if not request.path.startswith(API + "/") and request.path != API:
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.content_type == "application/json" or error.status < 400:
            raise
        # aiohttp's own (404 no route, 405, 413 over client_max_size...).
        return error_response(error.status, error.reason, dict(error.headers))
    except StoreUnavailable as error:
        logger.error("desk: store unavailable: %s", error)
        return error_response(503, STORE_DOWN)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception:
        logger.exception(
            "desk: unexpected error on %s %s", request.method, request.path
        )
        return error_response(500, "服务器内部错误 (internal error)")


def error_response(
    status: int, message: str, headers: Optional[Mapping[str, str]] = None
) -> web.Response:
    """A JSON error response (keeping headers such as Allow, not the body's)."""
    kept = {
        key: value
        for key, value in (headers or {}).items()
        if key.lower() not in ("content-type", "content-length")
    }
    return web.Response(
        status=status,
        text=json.dumps({"error": message}, ensure_ascii=False),
        content_type="application/json",
        headers={**kept, "Cache-Control": "no-store"},
    )


# -------------------------------------------------------------------------- helpers


async def off_loop(work: Callable[..., T], *args: Any) -> T:
    """Blocking work (SQL) in a thread."""
    return await asyncio.to_thread(work, *args)


async def json_body(request: web.Request) -> Dict[str, Any]:
    """The request's JSON object, or a 4xx."""
    too_large = (
        f"请求太大，最多 {MAX_BODY_BYTES} 字节 (body over {MAX_BODY_BYTES} bytes)"
    )
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            MAX_BODY_BYTES,
            request.content_length,
            text=json.dumps({"error": too_large}, ensure_ascii=False),
            content_type="application/json",
        )
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            MAX_BODY_BYTES,
            len(raw),
            text=json.dumps({"error": too_large}, ensure_ascii=False),
            content_type="application/json",
        )
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError):
        fail(web.HTTPBadRequest, "请求不是有效的 JSON (body is not valid JSON)")
    if not isinstance(body, dict):
        fail(web.HTTPBadRequest, "请求应为 JSON 对象 (body must be a JSON object)")
    return body


def text_field(
    body: Mapping[str, Any], name: str, required: bool, max_chars: int = MAX_TEXT_CHARS
) -> Optional[str]:
    """A text field, cleaned and stripped; a 400 if missing, mistyped or too long."""
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        fail(web.HTTPBadRequest, f"{name} 应为文字 ({name} must be a string)")
    value = clean(value).strip()
    if not value:
        if required:
            fail(web.HTTPBadRequest, f"{name} 不能为空 ({name} must not be empty)")
        return None
    if len(value) > max_chars:
        fail(
            web.HTTPBadRequest,
            f"{name} 最多 {max_chars} 字 ({name} is over {max_chars} characters)",
        )
    return value


def masked(text: str) -> str:
    """Personal data masked as the input gate masks a user's message."""
    return mask_personal_data(text).text


async def current_session(request: web.Request, touch: bool = True) -> Session:
    """The cookie's live session, or 401."""
    token = request.cookies.get(COOKIE)
    session = await off_loop(request.app[DESK].store.session, token, touch)
    if session is None:
        fail(web.HTTPUnauthorized, NO_SESSION)
    return session


async def supervisor_session(request: web.Request) -> Session:
    """A supervisor's session (insights, review): 401 without one, 403 for an agent."""
    session = await current_session(request)
    if session.agent.role != "supervisor":
        fail(web.HTTPForbidden, "仅限主管 (supervisors only)")
    return session


def check_csrf(request: web.Request, session: Session) -> None:
    """The change carries the session's CSRF token, or 403."""
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(
        sent.encode("utf-8", "surrogateescape"), session.csrf_token.encode()
    ):
        fail(web.HTTPForbidden, BAD_CSRF)


def not_cross_site(request: web.Request) -> None:
    """A browser's request from another site is refused (Fetch Metadata)."""
    if request.headers.get("Sec-Fetch-Site", "") == "cross-site":
        fail(web.HTTPForbidden, "跨站请求被拒绝 (cross-site request refused)")


async def change(request: web.Request) -> Session:
    """A POST that changes something: session (401), then CSRF (403)."""
    not_cross_site(request)
    session = await current_session(request)
    check_csrf(request, session)
    return session


def case_id_of(request: web.Request) -> str:
    """The path's case id; a malformed one is no case (404)."""
    case_id = request.match_info["case_id"]
    if not CASE_ID.match(case_id):
        fail(web.HTTPNotFound, "没有这个工单 (no such case)")
    return case_id


def desk_error(error: Exception) -> NoReturn:
    """A store refusal as its HTTP answer."""
    if isinstance(error, CaseNotFound):
        fail(web.HTTPNotFound, "没有这个工单 (no such case)")
    if isinstance(error, NotHolder):
        fail(
            web.HTTPForbidden,
            "这个工单由其他客服处理中 (another agent holds this case)",
            agent_id=error.holder,
        )
    if isinstance(error, CaseConflict):
        extra = {"agent_id": error.holder} if error.holder else {}
        message = (
            "这个工单已被其他客服接手 (another agent holds this case)"
            if error.holder
            else f"工单状态不允许此操作 ({error})"
        )
        fail(web.HTTPConflict, message, **extra)
    if isinstance(error, UnknownAgent):
        fail(web.HTTPBadRequest, f"没有这个客服 (no agent {error})")
    raise error


async def store_call(work: Callable[..., T], *args: Any) -> T:
    """A store operation in a thread, its refusals as HTTP answers."""
    try:
        return await off_loop(work, *args)
    except (CaseNotFound, NotHolder, CaseConflict, UnknownAgent) as error:
        desk_error(error)


def json_response(body: Any, status: int = 200) -> web.Response:
    """JSON, never cached."""
    return web.json_response(
        body,
        status=status,
        dumps=lambda value: json.dumps(value, ensure_ascii=False),
        headers={"Cache-Control": "no-store"},
    )


async def readable_case(request: web.Request, session: Session) -> Dict[str, Any]:
    """The case, if this agent may read it (else 404 or 403).

    Another agent's active case is a supervisor's to read, not an agent's.
    """
    case = await off_loop(request.app[DESK].store.case, case_id_of(request))
    if case is None:
        fail(web.HTTPNotFound, "没有这个工单 (no such case)")
    if (
        case["status"] == "active"
        and case["agent_id"] != session.agent.username
        and session.agent.role != "supervisor"
    ):
        fail(
            web.HTTPForbidden,
            "这个工单由其他客服处理中 (another agent holds this case)",
            agent_id=case["agent_id"],
        )
    return case


async def relayed(work: Callable[[], Any]) -> None:
    """A call to Rasa; RelayError is a 502 (the caller then changes nothing)."""
    try:
        await work()
    except RelayError as error:
        logger.error("desk: relay to Rasa failed: %s", error)
        fail(web.HTTPBadGateway, RELAY_DOWN)


# ------------------------------------------------------------------------- handlers


async def login(request: web.Request) -> web.StreamResponse:
    """POST login {username, password}."""
    desk = request.app[DESK]
    not_cross_site(request)
    body = await json_body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        fail(
            web.HTTPBadRequest,
            "需要 username 和 password (username and password required)",
        )
    if len(username) > MAX_USERNAME_CHARS or len(password) > MAX_PASSWORD_CHARS:
        fail(web.HTTPUnauthorized, WRONG_LOGIN)
    username = username.strip().lower()
    address = request.remote or "unknown"
    wait = await off_loop(desk.login_limit.retry_after, username, address)
    if wait is not None:
        minutes = max(1, -(-wait // 60))
        raise web.HTTPTooManyRequests(
            text=json.dumps(
                {
                    "error": f"登录尝试过多，请 {minutes} 分钟后再试 "
                    f"(too many sign-in attempts: try again in {minutes} min)",
                    "retry_after": wait,
                },
                ensure_ascii=False,
            ),
            content_type="application/json",
            headers={"Retry-After": str(wait), "Cache-Control": "no-store"},
        )
    async with desk.hash_slots:
        agent = await off_loop(desk.store.verify, username, password)
    if agent is None:
        await off_loop(desk.login_limit.failed, username, address)
        await off_loop(
            desk.store.audit,
            username or "?",
            "login_failed",
            None,
            {"address": address},
        )
        fail(web.HTTPUnauthorized, WRONG_LOGIN)
    previous = request.cookies.get(COOKIE)
    if previous:
        await off_loop(desk.store.end_session, previous)
    token, csrf = await off_loop(desk.store.create_session, agent)
    await off_loop(
        desk.store.audit, agent.username, "login", None, {"address": address}
    )
    response = json_response({"csrf_token": csrf, **agent.as_json()})
    response.set_cookie(
        COOKIE,
        token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=desk.cookie_secure,
    )
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """POST logout."""
    desk = request.app[DESK]
    session = await change(request)
    await off_loop(desk.store.end_session, request.cookies.get(COOKIE, ""))
    await off_loop(desk.store.audit, session.agent.username, "logout")
    response = json_response({"ok": True})
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response


async def me(request: web.Request) -> web.StreamResponse:
    """GET me."""
    session = await current_session(request)
    return json_response({**session.agent.as_json(), "csrf_token": session.csrf_token})


async def list_cases(request: web.Request) -> web.StreamResponse:
    """GET cases?status=waiting|active|resolved (default waiting)."""
    session = await current_session(request)
    status = request.query.get("status", "waiting")
    if status not in CASE_STATUSES:
        fail(
            web.HTTPBadRequest,
            "status 应为 waiting、active 或 resolved "
            "(status must be waiting, active or resolved)",
        )
    cases = await off_loop(
        request.app[DESK].store.cases, status, session.agent.username
    )
    return json_response({"cases": cases})


async def show_case(request: web.Request) -> web.StreamResponse:
    """GET cases/{id}: the case and its transcript."""
    session = await current_session(request)
    case = await readable_case(request, session)
    transcript = await off_loop(
        request.app[DESK].transcripts.entries, case["conversation_id"]
    )
    return json_response({"case": case, "transcript": transcript})


def _status_key(case: Mapping[str, Any]) -> Dict[str, Any]:
    """What of a case makes a status event (not the ever-growing wait)."""
    return {key: value for key, value in case.items() if key != "wait_seconds"}


def _after(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID") or request.query.get("after") or "0"
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        fail(
            web.HTTPBadRequest,
            "after / Last-Event-ID 应为事件编号 (must be an event id)",
        )
    return int(raw)


async def stream_case(request: web.Request) -> web.StreamResponse:
    """GET cases/{id}/stream: server-sent events, transcript and status.

    ``event: transcript`` (id = the event's id, so a reconnect resumes with
    Last-Event-ID) for each new message; ``event: status`` with the case when
    it changes; ``event: end`` when the session ends. It stops when the
    client goes away or the server stops.
    """
    desk = request.app[DESK]
    session = await current_session(request)
    case = await readable_case(request, session)
    last = _after(request)
    token = request.cookies.get(COOKIE)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    stopping = request.app[STOPPING]
    status_key: Optional[Dict[str, Any]] = None
    checked = sent = time.monotonic()
    store_down = False

    async def send(text: str) -> None:
        nonlocal sent
        await response.write(text.encode("utf-8"))
        sent = time.monotonic()

    try:
        while not stopping.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            try:
                entries = await off_loop(
                    desk.transcripts.entries, case["conversation_id"], last
                )
                current = await off_loop(desk.store.case, case["case_id"])
                store_down = False
            except StoreUnavailable as error:
                if not store_down:
                    logger.error("desk stream: store unavailable: %s", error)
                    await send(_event("error", {"error": STORE_DOWN}))
                store_down = True
                entries, current = [], case
            for item in entries:
                await send(_event("transcript", item, item["id"]))
                last = item["id"]
            if current is None:
                break
            if _status_key(current) != status_key:
                status_key = _status_key(current)
                await send(_event("status", current))
            now = time.monotonic()
            if now - checked >= desk.session_check_s:
                checked = now
                still = await off_loop(desk.store.session, token, False)
                if still is None:
                    await send(_event("end", {"error": NO_SESSION}))
                    break
            if now - sent >= desk.keepalive_s:
                await send(": keep-alive\n\n")
            try:
                await asyncio.wait_for(stopping.wait(), desk.poll_s)
            except asyncio.TimeoutError:
                pass
    except (ConnectionResetError, ConnectionError):
        pass  # the client went away
    return response


def _event(name: str, data: Any, event_id: Optional[int] = None) -> str:
    lines = [f"event: {name}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, ensure_ascii=False))
    return "\n".join(lines) + "\n\n"


async def claim(request: web.Request) -> web.StreamResponse:
    """POST cases/{id}/claim: take the case (409 if another agent holds it)."""
    desk = request.app[DESK]
    session = await change(request)
    agent = session.agent
    case, taken = await store_call(
        desk.store.claim, case_id_of(request), agent.username
    )
    if taken:
        try:
            await desk.relay.joined(
                case["conversation_id"], agent.username, agent.display_name
            )
        except RelayError as error:
            logger.error("desk: relay to Rasa failed, claim undone: %s", error)
            await off_loop(
                desk.store.unclaim, case["case_id"], agent.username, "relay_failed"
            )
            fail(web.HTTPBadGateway, RELAY_DOWN)
    return json_response(case)


async def unclaim(request: web.Request) -> web.StreamResponse:
    """POST cases/{id}/unclaim: back to the queue."""
    session = await change(request)
    case = await store_call(
        request.app[DESK].store.unclaim, case_id_of(request), session.agent.username
    )
    return json_response(case)


async def transfer(request: web.Request) -> web.StreamResponse:
    """POST cases/{id}/transfer {to}."""
    session = await change(request)
    case_id = case_id_of(request)
    body = await json_body(request)
    to = body.get("to")
    if not isinstance(to, str) or not to.strip() or len(to) > MAX_USERNAME_CHARS:
        fail(web.HTTPBadRequest, "需要 to：客服用户名 (to: an agent's username)")
    case = await store_call(
        request.app[DESK].store.transfer, case_id, session.agent.username, to.strip()
    )
    return json_response(case)


async def send_message(request: web.Request) -> web.StreamResponse:
    """POST cases/{id}/messages {text}: masked, then sent through Rasa."""
    desk = request.app[DESK]
    session = await change(request)
    agent = session.agent
    case_id = case_id_of(request)
    body = await json_body(request)
    text = text_field(body, "text", required=True)
    assert text is not None
    case = await store_call(desk.store.require_holder, case_id, agent.username)
    text = masked(text)
    await relayed(
        lambda: desk.relay.message(
            case["conversation_id"], text, agent.username, agent.display_name
        )
    )
    await off_loop(desk.store.message_sent, case_id, agent.username)
    return json_response({"ok": True, "text": text})


async def resolve(request: web.Request) -> web.StreamResponse:
    """POST cases/{id}/resolve {note?}: back to the bot, outcome handed_off."""
    desk = request.app[DESK]
    session = await change(request)
    agent = session.agent
    case_id = case_id_of(request)
    body = await json_body(request)
    note = text_field(body, "note", required=False)
    case = await store_call(desk.store.require_holder, case_id, agent.username)
    await relayed(
        lambda: desk.relay.resolved(
            case["conversation_id"], agent.username, agent.display_name
        )
    )
    resolved = await store_call(
        desk.store.resolve, case_id, agent.username, masked(note) if note else None
    )
    return json_response(resolved)


async def list_agents(request: web.Request) -> web.StreamResponse:
    """GET agents: everyone a case can be transferred to."""
    await current_session(request)
    agents: List[Agent] = await off_loop(request.app[DESK].store.agents)
    return json_response([agent.as_json() for agent in agents])


async def _stop_streams(app: web.Application) -> None:
    app[STOPPING].set()


async def _close_relay(app: web.Application) -> None:
    await app[DESK].relay.close()


def setup(app: web.Application, desk: Desk) -> None:
    """Mount the desk's API on the page server's application."""
    app[DESK] = desk
    app[STOPPING] = asyncio.Event()
    # aiosignal 1.4's Signal type does not match aiohttp 3.9's annotation.
    app.on_shutdown.append(_stop_streams)  # type: ignore[arg-type]
    app.on_cleanup.append(_close_relay)  # type: ignore[arg-type]
    routes = app.router
    routes.add_post(f"{API}/login", login)
    routes.add_post(f"{API}/logout", logout)
    routes.add_get(f"{API}/me", me)
    routes.add_get(f"{API}/cases", list_cases)
    routes.add_get(f"{API}/cases/{{case_id}}", show_case)
    routes.add_get(f"{API}/cases/{{case_id}}/stream", stream_case)
    routes.add_post(f"{API}/cases/{{case_id}}/claim", claim)
    routes.add_post(f"{API}/cases/{{case_id}}/unclaim", unclaim)
    routes.add_post(f"{API}/cases/{{case_id}}/transfer", transfer)
    routes.add_post(f"{API}/cases/{{case_id}}/messages", send_message)
    routes.add_post(f"{API}/cases/{{case_id}}/resolve", resolve)
    routes.add_get(f"{API}/agents", list_agents)


def prepare(store: DeskStore, profile: str) -> Optional[str]:
    """At start-up: the demo agents (demo); the refusal line, if any (prod).

    The production profile refuses to start while an agent has the demo password.
    """
    store.ensure_schema()
    if profile == "demo":
        created = store.ensure_demo_agents()
        if created:
            logger.info("desk: demo agents created: %s (demo only)", ", ".join(created))
        return None
    if not store.agents():
        logger.warning(
            "desk: no agents yet: add one with `make agent-add PROFILE=prod NAME=...`"
        )
        return None
    demo = store.demo_password_agents()
    if demo:
        return (
            f"the agent desk refuses to start in the production profile: agent(s) "
            f"{', '.join(demo)} still have the demo password; give each a real one "
            f"with `make agent-add PROFILE=prod NAME=<username>`"
        )
    return None
