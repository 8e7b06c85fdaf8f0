"""Fixtures of the channel tests: the fake WeChat-style platform API, an HTTP client."""

from __future__ import annotations

from typing import AsyncIterator

import aiohttp
import pytest

from devtools.fake_platform import FakePlatform
from devtools.wechat_apps import APP_ID, CORP_ID


@pytest.fixture
async def platform() -> AsyncIterator[FakePlatform]:
    fake = FakePlatform(corp_id=CORP_ID, app_id=APP_ID)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=10)
    ) as session:
        yield session
