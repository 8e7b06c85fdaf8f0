"""The settings of each process: what it reads from the environment.

One frozen class per process, each read once (``rasa_server_settings()``,
``action_settings()``, ``action_server_settings()``, ``page_server_settings()``);
tests build their own with ``core.load(cls, environ)``. docs/profiles.md
explains each variable.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote, urlsplit

from limits import parse_many

from desk.hours import ALWAYS, DEFAULT_TIMEZONE, ServiceHours, timezone_named
from settings.core import (
    Variable,
    choice,
    comma_list,
    flag,
    load,
    positive_float,
    positive_int,
    secret,
    setting,
    text,
    url,
    variables,
)

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("demo", "prod")
# Signs and checks the identity tokens (actions/identity.py): shared by the
# messaging channels, the page server's demo login and the action server.
MIN_SECRET_CHARS = 32
# A deployment's database password (`openssl rand -hex 24` makes 48).
MIN_DB_PASSWORD_CHARS = 16
DEFAULT_ACCOUNT_DB_URL = f"sqlite:///{ROOT / '.rasa' / 'accounts.db'}"
AES_KEY_CHARS = 43


def rate_limit(raw: str) -> str:
    """``off``, or limits in the ``limits`` notation (``20/minute;5/second``)."""
    if raw == "off":
        return raw
    try:
        items = parse_many(raw)
    except ValueError:
        items = []
    if not items:
        raise ValueError("must be like 20/minute (several: 100/hour;20/minute) or off")
    return raw


def limits_only(raw: str) -> str:
    """Limits in the ``limits`` notation (``5/5 minutes``); ``off`` is refused."""
    if raw.strip().lower() == "off":
        raise ValueError("must be a limit like 5/5 minutes (it cannot be off)")
    return rate_limit(raw)


def origins(raw: str) -> Tuple[str, ...]:
    """Comma-separated http(s) origins, without a trailing slash."""
    found = tuple(item.rstrip("/") for item in comma_list(raw))
    for origin in found:
        url("http", "https")(origin)
    return found


def origin(raw: str) -> str:
    """``scheme://host[:port]``: socket.io reads a path in its URL as a namespace."""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be an origin (no path or query)")
    return f"{parts.scheme}://{parts.netloc}"


def agent_id(raw: str) -> str:
    """WeCom's numeric AgentId."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise ValueError("must be the app's numeric AgentId")
    return raw


def encoding_aes_key(raw: str) -> str:
    """The platform's 43-character EncodingAESKey (base64 of 32 bytes)."""
    try:
        key = base64.b64decode(raw + "=", validate=True)
    except binascii.Error:
        key = b""
    if len(raw) != AES_KEY_CHARS or len(key) != 32:
        raise ValueError(f"must be the {AES_KEY_CHARS}-character EncodingAESKey")
    return raw


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fraction(raw: str) -> float:
    """A number above 0 and at most 1 (a confidence)."""
    value = positive_float(raw)
    if value > 1:
        raise ValueError("must be a number above 0 and at most 1")
    return value


def port(raw: str) -> int:
    """A TCP port, 1-65535."""
    value = positive_int(raw)
    if value > 65535:
        raise ValueError("must be a port number, 1-65535")
    return value


def service_hours(raw: str) -> str:
    """``always`` or one daily range ``HH:MM-HH:MM`` (desk/hours.py)."""
    ServiceHours.parse(raw)
    return raw


def time_zone(raw: str) -> str:
    """An IANA time zone name (Asia/Shanghai)."""
    timezone_named(raw)
    return raw


def _partly_set(group: str, values: dict[str, Optional[str]]) -> List[str]:
    """A platform is either configured completely or not at all."""
    unset = [name for name, value in values.items() if not value]
    if unset and len(unset) < len(values):
        return [f"{group} is partly configured: set {', '.join(unset)} too, or none"]
    return []


_PROFILE = setting(
    "BOT_PROFILE",
    choice(*PROFILES),
    "demo",
    "demo: fixture accounts, embedded stores; prod: real servers",
)
# The account and case stores (the custom actions; insights reads the cases).
_ACCOUNT_DB_URL = setting(
    "ACCOUNT_DB_URL",
    text,
    DEFAULT_ACCOUNT_DB_URL,
    "SQLAlchemy URL of the account store",
)
_CASE_DB_URL = setting(
    "CASE_DB_URL",
    text,
    None,
    "SQLAlchemy URL of the case store (default: the account store's)",
)
# Rasa's tracker store as endpoints*.yml names it: Rasa reads these through
# the endpoints file; insights/ reads the same store (its `events` table).
DEFAULT_TRACKER_DB_PATH = ".rasa/tracker.db"
# The review queue (insights/review.py): read by `python -m insights` and by
# the page server's /agent/review.
_REVIEW_CONFIDENCE_BELOW = setting(
    "REVIEW_CONFIDENCE_BELOW",
    fraction,
    0.82,
    "user messages the NLU was less sure of go to the review queue "
    "(default: the fallback threshold of config.yml)",
)
_IDENTITY_SECRET = setting(
    "IDENTITY_JWT_SECRET",
    secret(MIN_SECRET_CHARS),
    None,
    "signs the verified identity a channel gives the action server",
    secret=True,
)

_ACCOUNT_DB_URL = setting(
    "ACCOUNT_DB_URL",
    text,
    DEFAULT_ACCOUNT_DB_URL,
    "SQLAlchemy URL of the account store",
)
_CASE_DB_URL = setting(
    "CASE_DB_URL",
    text,
    None,
    "SQLAlchemy URL of the case store (default: the account store's)",
)
# The agent desk's service hours (desk/hours.py): the bot tells a user who asks
# for a person outside them when agents are back.
_DESK_SERVICE_HOURS = setting(
    "DESK_SERVICE_HOURS",
    service_hours,
    ALWAYS,
    "when agents staff the desk: always, or a daily range like 09:00-21:00 "
    "(DESK_TIMEZONE; 21:00-09:00 runs over midnight)",
)
_DESK_TIMEZONE = setting(
    "DESK_TIMEZONE",
    time_zone,
    DEFAULT_TIMEZONE,
    "time zone of DESK_SERVICE_HOURS (IANA name)",
)


@dataclass(frozen=True)
class RasaServerSettings:
    """The Rasa server's own code: channels, reply pipeline, platforms.

    Rasa itself also reads the variables named in endpoints*.yml (tracker and
    lock stores, action endpoint); the deployment checks read those files.
    """

    rate_limit: str = setting(
        "RATE_LIMIT",
        rate_limit,
        "20/minute",
        "messages per sender (limits notation); off only for benchmarks",
    )
    rate_limit_storage_url: str = setting(
        "RATE_LIMIT_STORAGE_URL",
        url("memory", "redis", "rediss"),
        "memory://",
        "where the counts live: memory:// (one process) or redis://host:port/db",
    )
    sanic_workers: int = setting(
        "SANIC_WORKERS",
        positive_int,
        1,
        "Rasa server processes sharing its port (read by Rasa; above 1 only "
        "with the Redis lock store and rate-limit counts in Redis)",
    )
    channel_state_url: str = setting(
        "CHANNEL_STATE_URL",
        url("memory", "redis", "rediss"),
        "memory://",
        "where the messaging channels keep button numbers and message ids seen: "
        "memory:// (one process) or redis://host:port/db",
    )
    reply_deadline_s: float = setting(
        "REPLY_DEADLINE_SECONDS",
        positive_float,
        8.0,
        "seconds a user waits at most before the guard answers",
    )
    max_message_chars: int = setting(
        "MAX_MESSAGE_CHARS",
        positive_int,
        1000,
        "a message is cut here, after masking, and the user told",
    )
    allow_intent_syntax: bool = setting(
        "ALLOW_INTENT_SYNTAX",
        flag,
        False,
        "1 keeps Rasa's /intent{...} messages (conversation tests only)",
        never_deployed="a test switch: users could set slots and force intents",
    )
    rest_max_body_bytes: int = setting(
        "REST_MAX_BODY_BYTES",
        positive_int,
        256 * 1024,
        "the largest REST message body",
    )
    max_request_bytes: int = setting(
        "MAX_REQUEST_BYTES",
        positive_int,
        1024 * 1024,
        "Sanic's body limit for every request",
    )
    web_allowed_origins: Tuple[str, ...] = setting(
        "WEB_ALLOWED_ORIGINS",
        origins,
        ("http://127.0.0.1:8080", "http://localhost:8080"),
        "page origins that may open a socket.io session",
    )
    identity_secret: Optional[str] = _IDENTITY_SECRET
    # The reply guard reads the case of a paused conversation (its place in
    # the queue, whether an agent has it) from the case store.
    account_db_url: str = _ACCOUNT_DB_URL
    case_db_url: Optional[str] = _CASE_DB_URL
    desk_service_hours: str = _DESK_SERVICE_HOURS
    desk_timezone: str = _DESK_TIMEZONE
    wecom_corp_id: Optional[str] = setting(
        "WECOM_CORP_ID", text, None, "WeCom CorpID (all WECOM_* or none)"
    )
    wecom_agent_id: Optional[str] = setting(
        "WECOM_AGENT_ID", agent_id, None, "WeCom app's AgentId"
    )
    wecom_secret: Optional[str] = setting(
        "WECOM_SECRET", text, None, "WeCom app's Secret", secret=True
    )
    wecom_token: Optional[str] = setting(
        "WECOM_TOKEN", text, None, "WeCom callback Token", secret=True
    )
    wecom_aes_key: Optional[str] = setting(
        "WECOM_AES_KEY",
        encoding_aes_key,
        None,
        "WeCom callback EncodingAESKey",
        secret=True,
    )
    wecom_api_base: str = setting(
        "WECOM_API_BASE",
        url("http", "https"),
        "https://qyapi.weixin.qq.com",
        "WeCom API (a test double's address in tests)",
    )
    wechat_app_id: Optional[str] = setting(
        "WECHAT_APP_ID", text, None, "Official Account AppID (all WECHAT_* or none)"
    )
    wechat_app_secret: Optional[str] = setting(
        "WECHAT_APP_SECRET", text, None, "Official Account AppSecret", secret=True
    )
    wechat_token: Optional[str] = setting(
        "WECHAT_TOKEN", text, None, "Official Account server Token", secret=True
    )
    wechat_aes_key: Optional[str] = setting(
        "WECHAT_AES_KEY",
        encoding_aes_key,
        None,
        "Official Account EncodingAESKey",
        secret=True,
    )
    wechat_api_base: str = setting(
        "WECHAT_API_BASE",
        url("http", "https"),
        "https://api.weixin.qq.com",
        "Official Account API (a test double's address in tests)",
    )

    @property
    def case_store_url(self) -> str:
        """The case store: its own database or the account store's."""
        return self.case_db_url or self.account_db_url

    @property
    def desk_hours(self) -> ServiceHours:
        """The desk's service hours in its time zone."""
        return ServiceHours.parse(self.desk_service_hours, self.desk_timezone)

    @property
    def wecom_configured(self) -> bool:
        """Every WECOM_* credential is set (else the channel answers 503)."""
        return all(self._wecom().values())

    @property
    def wechat_configured(self) -> bool:
        """Every WECHAT_* credential is set (else the channel answers 503)."""
        return all(self._wechat().values())

    def unset(self, platform: str) -> List[str]:
        """The credentials of ``platform`` (wecom or wechat) left unset."""
        values = self._wecom() if platform == "wecom" else self._wechat()
        return [name for name, value in values.items() if not value]

    def _workers_share_channel_memory(self) -> List[str]:
        """A messaging channel on several workers needs its memory in Redis.

        In memory, a number reply that reaches another worker than the one
        that sent the buttons would miss its button.
        """
        channels = self.wecom_configured or self.wechat_configured
        alone = self.channel_state_url.startswith("memory://")
        if self.sanic_workers > 1 and channels and alone:
            return [
                f"SANIC_WORKERS={self.sanic_workers} with a messaging channel needs "
                "CHANNEL_STATE_URL=redis://host:port/db: in memory a number reply "
                "that reaches another worker misses its button"
            ]
        return []

    def _wecom(self) -> dict[str, Optional[str]]:
        return {
            "WECOM_CORP_ID": self.wecom_corp_id,
            "WECOM_AGENT_ID": self.wecom_agent_id,
            "WECOM_SECRET": self.wecom_secret,
            "WECOM_TOKEN": self.wecom_token,
            "WECOM_AES_KEY": self.wecom_aes_key,
        }

    def _wechat(self) -> dict[str, Optional[str]]:
        return {
            "WECHAT_APP_ID": self.wechat_app_id,
            "WECHAT_APP_SECRET": self.wechat_app_secret,
            "WECHAT_TOKEN": self.wechat_token,
            "WECHAT_AES_KEY": self.wechat_aes_key,
        }

    def problems(self) -> List[str]:
        """Settings that are fine alone but not together."""
        return (
            self._workers_share_counts()
            + self._workers_share_channel_memory()
            + _partly_set("WeCom", self._wecom())
            + _partly_set("the Official Account", self._wechat())
        )

    def _workers_share_counts(self) -> List[str]:
        """Several workers need the rate-limit counts outside the process.

        Each worker is a process: counting in memory, a sender would get the
        limit once per worker.
        """
        alone = self.rate_limit_storage_url.startswith("memory://")
        if self.sanic_workers > 1 and alone and self.rate_limit != "off":
            return [
                f"SANIC_WORKERS={self.sanic_workers} needs RATE_LIMIT_STORAGE_URL="
                "redis://host:port/db: with memory:// each worker counts a "
                "sender's messages alone"
            ]
        return []


@dataclass(frozen=True)
class ActionSettings:
    """The custom actions: account and case stores, how the user is known."""

    profile: str = _PROFILE
    account_identity: Optional[str] = setting(
        "ACCOUNT_IDENTITY",
        choice("sender", "verified"),
        None,
        "sender: the conversation id is the account (demo default); "
        "verified: only a signed identity counts (prod default)",
    )
    account_db_url: str = _ACCOUNT_DB_URL
    case_db_url: Optional[str] = _CASE_DB_URL
    lookup_timeout_s: float = setting(
        "ACCOUNT_LOOKUP_TIMEOUT",
        positive_float,
        2.0,
        "seconds an account lookup may take before the bot asks the user",
    )
    identity_secret: Optional[str] = _IDENTITY_SECRET
    desk_service_hours: str = _DESK_SERVICE_HOURS
    desk_timezone: str = _DESK_TIMEZONE

    @property
    def identity(self) -> str:
        """How the user's account is known: ``sender`` or ``verified``."""
        if self.account_identity:
            return self.account_identity
        return "sender" if self.profile == "demo" else "verified"

    @property
    def case_store_url(self) -> str:
        """The case store: its own database or the account store's."""
        return self.case_db_url or self.account_db_url

    @property
    def desk_hours(self) -> ServiceHours:
        """The desk's service hours in its time zone."""
        return ServiceHours.parse(self.desk_service_hours, self.desk_timezone)


@dataclass(frozen=True)
class ActionServerSettings:
    """The action server's listener: address and the shared secret."""

    profile: str = _PROFILE
    host: str = setting(
        "ACTION_SERVER_HOST",
        text,
        "127.0.0.1",
        "address the action server listens on",
    )
    token: Optional[str] = setting(
        "ACTION_SERVER_TOKEN",
        secret(MIN_SECRET_CHARS),
        None,
        "shared secret the Rasa server sends (required in prod or off loopback)",
        secret=True,
    )

    def problems(self) -> List[str]:
        """An action server that anyone could call is refused."""
        if self.token is not None:
            return []
        if self.profile == "prod":
            return [
                "ACTION_SERVER_TOKEN must be set in the production profile "
                "(the same value for the Rasa server)"
            ]
        if not is_loopback(self.host):
            return [
                f"ACTION_SERVER_HOST={self.host} is reachable from other machines: "
                "set ACTION_SERVER_TOKEN (the same value for the Rasa server)"
            ]
        return []


@dataclass(frozen=True)
class PageServerSettings:
    """The page server: the chat page, and the agent desk (desk/, web/agent_api.py).

    The desk reads the case store (its own tables beside the cases), Rasa's
    tracker store (the transcripts) and calls Rasa's HTTP API (the relay).
    The supervisors' insights (web/insights_api.py) read the same stores and
    ask Rasa's /model/parse.
    """

    profile: str = _PROFILE
    rasa_public_url: str = setting(
        "RASA_PUBLIC_URL",
        origin,
        "http://127.0.0.1:5005",
        "the Rasa server's origin as the browser sees it",
    )
    web_demo_login: bool = setting(
        "WEB_DEMO_LOGIN",
        flag,
        False,
        "1: the page signs a demo identity for a fixture account (demo only)",
        never_deployed="a demo stand-in for a host's login: anyone could sign in "
        "as a fixture account",
    )
    identity_secret: Optional[str] = setting(
        "IDENTITY_JWT_SECRET",
        secret(MIN_SECRET_CHARS),
        None,
        "signs the demo login's identity (only with WEB_DEMO_LOGIN=1)",
        secret=True,
        never_deployed="only the demo login needs it: the page server holds no "
        "secret of the identity",
    )
    account_db_url: str = _ACCOUNT_DB_URL
    case_db_url: Optional[str] = _CASE_DB_URL
    tracker_db_path: str = setting(
        "TRACKER_DB_PATH",
        text,
        str(ROOT / ".rasa" / "tracker.db"),
        "the embedded profile's SQLite tracker store (as endpoints.yml names it), "
        "read for the desk's transcripts unless TRACKER_DB_HOST is set",
        never_deployed="a deployment's tracker store is PostgreSQL (TRACKER_DB_HOST)",
    )
    tracker_db_host: Optional[str] = setting(
        "TRACKER_DB_HOST",
        text,
        None,
        "PostgreSQL of Rasa's tracker store (endpoints.prod.yml): the desk "
        "reads the transcripts there",
    )
    tracker_db_port: int = setting("TRACKER_DB_PORT", positive_int, 5432, "its port")
    tracker_db_name: str = setting(
        "TRACKER_DB_NAME", text, "jiebei_tracker", "its database"
    )
    tracker_db_user: str = setting("TRACKER_DB_USER", text, "postgres", "its user")
    tracker_db_password: Optional[str] = setting(
        "TRACKER_DB_PASSWORD",
        secret(MIN_DB_PASSWORD_CHARS),
        None,
        "its user's password",
        secret=True,
    )
    rasa_internal_url: Optional[str] = setting(
        "RASA_INTERNAL_URL",
        url("http", "https"),
        None,
        "where the page server reaches Rasa's HTTP API to put an agent's words "
        "into a conversation (default: RASA_PUBLIC_URL)",
    )
    rasa_auth_token: Optional[str] = setting(
        "RASA_AUTH_TOKEN",
        secret(MIN_SECRET_CHARS),
        None,
        "Rasa's HTTP API token (--auth-token): the desk sends it (prod)",
        secret=True,
    )
    desk_session_idle_minutes: int = setting(
        "DESK_SESSION_IDLE_MINUTES",
        positive_int,
        30,
        "an agent's session ends after this many minutes without an action",
    )
    desk_cookie_secure: bool = setting(
        "DESK_COOKIE_SECURE",
        flag,
        False,
        "1: the desk's session cookie is sent over HTTPS only (behind TLS)",
    )
    desk_login_limit: str = setting(
        "DESK_LOGIN_LIMIT",
        limits_only,
        "5/5 minutes",
        "failed desk sign-ins per username (limits notation)",
    )
    desk_login_address_limit: str = setting(
        "DESK_LOGIN_ADDRESS_LIMIT",
        limits_only,
        "20/5 minutes",
        "failed desk sign-ins per client address (behind a proxy: the proxy's)",
    )
    rate_limit_storage_url: str = setting(
        "RATE_LIMIT_STORAGE_URL",
        url("memory", "redis", "rediss"),
        "memory://",
        "where the desk's sign-in counts live: memory:// (one process) or "
        "redis://host:port/db (several page servers)",
    )
    desk_agent_password: Optional[str] = setting(
        "DESK_AGENT_PASSWORD",
        text,
        None,
        "the password `python -m desk add-agent` (make agent-add) sets; unset: it asks",
        secret=True,
        never_deployed="read by `make agent-add` only: a server never keeps an "
        "agent's password in its environment",
    )
    review_confidence_below: float = _REVIEW_CONFIDENCE_BELOW

    @property
    def case_store_url(self) -> str:
        """The case store (the desk's tables live there too)."""
        return self.case_db_url or self.account_db_url

    @property
    def tracker_db_url(self) -> str:
        """Rasa's tracker store: PostgreSQL when TRACKER_DB_HOST is set, else SQLite."""
        if not self.tracker_db_host:
            return f"sqlite:///{self.tracker_db_path}"
        credentials = quote(self.tracker_db_user, safe="")
        if self.tracker_db_password:
            credentials += ":" + quote(self.tracker_db_password, safe="")
        return (
            f"postgresql://{credentials}@{self.tracker_db_host}:"
            f"{self.tracker_db_port}/{self.tracker_db_name}"
        )

    @property
    def rasa_api_url(self) -> str:
        """Where the relay calls Rasa's HTTP API."""
        return (self.rasa_internal_url or self.rasa_public_url).rstrip("/")

    def problems(self) -> List[str]:
        """The demo login cannot sign without the secret."""
        if self.web_demo_login and not self.identity_secret:
            return ["WEB_DEMO_LOGIN=1 needs IDENTITY_JWT_SECRET"]
        return []


@dataclass(frozen=True)
class StoreSettings:
    """Where insights reads: Rasa's tracker store and the case store.

    The tracker store by the variables of endpoints*.yml (a PostgreSQL server
    when TRACKER_DB_HOST is set, else the SQLite file). A process that serves
    insights (the page server's staff API) derives its settings from this.
    """

    tracker_db_path: str = setting(
        "TRACKER_DB_PATH",
        text,
        DEFAULT_TRACKER_DB_PATH,
        "the embedded tracker store's SQLite file (relative: to the repo); "
        "used while TRACKER_DB_HOST is unset",
        never_deployed="the embedded profile's file: a deployment's tracker store "
        "is PostgreSQL (TRACKER_DB_HOST)",
    )
    tracker_db_host: Optional[str] = setting(
        "TRACKER_DB_HOST",
        text,
        None,
        "the PostgreSQL tracker store's host (endpoints.prod.yml)",
    )
    tracker_db_port: int = setting("TRACKER_DB_PORT", port, 5432, "its port")
    tracker_db_name: str = setting(
        "TRACKER_DB_NAME", text, "jiebei_tracker", "its database"
    )
    tracker_db_user: str = setting("TRACKER_DB_USER", text, "postgres", "its user")
    tracker_db_password: Optional[str] = setting(
        "TRACKER_DB_PASSWORD",
        secret(MIN_DB_PASSWORD_CHARS),
        None,
        f"its user's password (at least {MIN_DB_PASSWORD_CHARS} characters; "
        "unset: none)",
        secret=True,
    )
    account_db_url: str = _ACCOUNT_DB_URL
    case_db_url: Optional[str] = _CASE_DB_URL

    @property
    def case_store_url(self) -> str:
        """The case store: its own database or the account store's."""
        return self.case_db_url or self.account_db_url

    @property
    def tracker_store_url(self) -> str:
        """Rasa's tracker store as a SQLAlchemy URL."""
        if self.tracker_db_host:
            from sqlalchemy.engine import URL

            return URL.create(
                "postgresql",
                username=self.tracker_db_user,
                password=self.tracker_db_password,
                host=self.tracker_db_host,
                port=self.tracker_db_port,
                database=self.tracker_db_name,
            ).render_as_string(hide_password=False)
        path = Path(self.tracker_db_path)
        return f"sqlite:///{path if path.is_absolute() else ROOT / path}"


@dataclass(frozen=True)
class InsightsSettings(StoreSettings):
    """Insights and the learning loop (``python -m insights``; docs/insights.md)."""

    retention_days: int = setting(
        "RETENTION_DAYS",
        positive_int,
        90,
        "days a conversation is kept after its last activity "
        "(python -m insights purge)",
    )
    review_confidence_below: float = _REVIEW_CONFIDENCE_BELOW


@functools.lru_cache(maxsize=1)
def rasa_server_settings() -> RasaServerSettings:
    """The Rasa server's settings, read on first use (at start-up)."""
    return load(RasaServerSettings)


@functools.lru_cache(maxsize=1)
def action_settings() -> ActionSettings:
    """The custom actions' settings, read on first use (at start-up)."""
    return load(ActionSettings)


@functools.lru_cache(maxsize=1)
def action_server_settings() -> ActionServerSettings:
    """The action server's listener settings, read once at start-up."""
    return load(ActionServerSettings)


@functools.lru_cache(maxsize=1)
def page_server_settings() -> PageServerSettings:
    """The page server's settings, read on first use (at start-up)."""
    return load(PageServerSettings)


@functools.lru_cache(maxsize=1)
def insights_settings() -> InsightsSettings:
    """Insights' settings, read on first use."""
    return load(InsightsSettings)


def clear_settings() -> None:
    """Forget what was read (tests change the environment between cases)."""
    for accessor in (
        rasa_server_settings,
        action_settings,
        action_server_settings,
        page_server_settings,
        insights_settings,
    ):
        accessor.cache_clear()


# The settings each deployed process reads (tests/deploy): the demo seed
# (python -m actions.services.accounts seed) runs the actions' code but not
# the server, so it gets neither the listener's address nor its token.
PROCESSES: Dict[str, Tuple[type, ...]] = {
    "rasa": (RasaServerSettings,),
    "actions": (ActionSettings, ActionServerSettings),
    "seed": (ActionSettings,),
    "web": (PageServerSettings,),
    # python -m insights: the retention purge (a CronJob, compose's `purge`)
    # and the figures and review queue on the command line.
    "insights": (InsightsSettings,),
}


def process_variables(process: str) -> Tuple[Variable, ...]:
    """Every variable ``process`` reads (once each, by name)."""
    found: Dict[str, Variable] = {}
    for cls in PROCESSES[process]:
        for variable in variables(cls):
            found.setdefault(variable.name, variable)
    return tuple(found.values())
