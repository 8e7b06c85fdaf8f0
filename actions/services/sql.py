"""Shared SQLAlchemy engine construction with timeouts for SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import math
from typing import Any, Dict

import sqlalchemy as sa
from sqlalchemy.engine import Engine


class StoreUnavailable(Exception):
    """A database could not be reached or did not answer in time."""


def connect_args(url: str, timeout_s: float) -> Dict[str, Any]:
    """Driver options so that connecting and each statement are bounded in time."""
    if url.startswith("sqlite"):
        return {"timeout": timeout_s, "check_same_thread": False}
    if url.startswith("postgresql"):
        return {
            "connect_timeout": max(1, math.ceil(timeout_s)),
            "options": f"-c statement_timeout={int(timeout_s * 1000)}",
        }
    return {}


@functools.lru_cache(maxsize=8)
def engine_for(url: str, timeout_s: float) -> Engine:
    """One pooled engine per URL (created on first use, not at import)."""
    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(
        url,
        connect_args=connect_args(url, timeout_s),
        pool_pre_ping=True,
        future=True,
    )


def ensure_database(url: str, timeout_s: float) -> None:
    """Create the PostgreSQL database of ``url`` if it does not exist yet.

    Connects to the server's ``postgres`` database for that. SQLite files are
    created on first use, so nothing is done for them.
    """
    target = sa.engine.make_url(url)
    if not target.drivername.startswith("postgresql") or not target.database:
        return
    admin = sa.create_engine(
        target.set(database="postgres"),
        connect_args=connect_args(url, timeout_s),
        isolation_level="AUTOCOMMIT",
        future=True,
    )
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database},
            ).first()
            if not exists:
                quoted = admin.dialect.identifier_preparer.quote(target.database)
                connection.execute(sa.text(f"CREATE DATABASE {quoted}"))
    except sa.exc.OperationalError as error:
        raise StoreUnavailable(f"cannot reach {target.host}: {error.orig}") from error
    finally:
        admin.dispose()
