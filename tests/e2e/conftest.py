"""The real bot of the conversation tests: both servers, a fresh account store.

One per test module (module scope): starting the servers takes most of a
module's time. Modules that need another set-up define their own `bot`.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from devtools.harness import Bot, running_bot


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    with running_bot(tmp_path_factory.mktemp("bot")) as running:
        yield running
