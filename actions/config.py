"""Settings of the action server, read from the environment (docs/profiles.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_URL = f"sqlite:///{ROOT / '.rasa' / 'accounts.db'}"


@dataclass(frozen=True)
class Settings:
    """Everything the actions and services need to know about their environment."""

    # "demo": fixture accounts, embedded stores. "prod": real servers.
    profile: str
    # Who the user is: "sender" (the conversation id is the account id: the
    # demo's fixture ids) or "verified" (only a signed identity counts; the
    # default of the production profile).
    identity: str
    account_db_url: str
    case_db_url: str
    lookup_timeout_s: float


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


def load_settings() -> Settings:
    """Read the settings now (called where needed, never at import time)."""
    account_url = os.environ.get("ACCOUNT_DB_URL") or DEFAULT_DB_URL
    profile = os.environ.get("BOT_PROFILE", "demo")
    if profile not in ("demo", "prod"):
        raise ValueError(f"BOT_PROFILE must be demo or prod, got {profile!r}")
    identity = os.environ.get("ACCOUNT_IDENTITY") or (
        "sender" if profile == "demo" else "verified"
    )
    if identity not in ("sender", "verified"):
        raise ValueError(
            f"ACCOUNT_IDENTITY must be sender or verified, got {identity!r}"
        )
    return Settings(
        profile=profile,
        identity=identity,
        account_db_url=account_url,
        case_db_url=os.environ.get("CASE_DB_URL") or account_url,
        lookup_timeout_s=_float("ACCOUNT_LOOKUP_TIMEOUT", 2.0),
    )
