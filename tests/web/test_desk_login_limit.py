"""The desk's sign-in limit (web/agent_api.py LoginLimit) on real Redis.

limits 2.4's limiter keeps only a weak reference to its storage: a LoginLimit
that did not hold the storage itself limited nothing once it was collected
(found by the console's browser test: the 6th sign-in went through).
"""

from __future__ import annotations

import gc
import uuid

from devtools.servers import Redis
from web.agent_api import LoginLimit


def test_failed_sign_ins_are_limited_on_redis(redis: Redis) -> None:
    limit = LoginLimit.from_url(
        "3/5 minutes", "1000/5 minutes", f"redis://{redis.host}:{redis.port}/0"
    )
    gc.collect()
    username = f"limit-test-{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        assert limit.retry_after(username, "127.0.0.1") is None
        limit.failed(username, "127.0.0.1")
    wait = limit.retry_after(username, "127.0.0.1")
    assert wait is not None and 0 < wait <= 300
    assert limit.retry_after("someone-else", "127.0.0.1") is None
