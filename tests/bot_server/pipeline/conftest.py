"""Fixtures of the pipeline tests: a fresh rate limit for every test."""

from __future__ import annotations

from typing import Iterator

import pytest

from bot_server.pipeline import ratelimit


@pytest.fixture(autouse=True)
def fresh_rate_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The default limit, counted afresh for every test."""
    monkeypatch.delenv("RATE_LIMIT", raising=False)
    monkeypatch.delenv("RATE_LIMIT_STORAGE_URL", raising=False)
    ratelimit.reset()
    yield
    ratelimit.reset()
