"""The one renderer of the server's own replies (bot_server/pipeline/replies.py)."""

from __future__ import annotations

import logging
import re

import pytest

from bot_server.pipeline import replies
from tests.bot_server.pipeline.support import ROOT, FakeAgent, response_text


@pytest.fixture(autouse=True)
def forget_reports() -> None:
    replies._reported_missing.clear()


async def test_a_domain_response_is_rendered_with_its_buttons() -> None:
    message = await replies.render(FakeAgent(), "utter_service_trouble", "u", "rest")
    assert message is not None
    assert message["text"] == response_text("utter_service_trouble")
    assert message["buttons"][0]["title"] == "转人工"


async def test_template_values_fill_the_response() -> None:
    line = await replies.render_text(
        FakeAgent(),
        "utter_channel_button_option",
        "u",
        "wecom",
        number="2",
        title="没做成",
    )
    assert line == "回复 2：没做成"


async def test_a_missing_response_is_none_and_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        for agent in (FakeAgent(), None):
            assert await replies.render(agent, "utter_nowhere", "u", "rest") is None
    assert caplog.text.count("utter_nowhere missing") == 1


async def test_an_answer_the_user_must_get_falls_back_to_the_last_resort() -> None:
    answer = await replies.render_answer(None, "utter_service_trouble", "u", "rest")
    assert answer == {"text": replies.LAST_RESORT_TEXT}


def test_only_the_renderer_asks_the_agents_nlg() -> None:
    """One renderer: no other module of the server renders a response itself."""
    callers = [
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "bot_server").rglob("*.py"))
        if re.search(r"\bnlg\.generate\(", path.read_text(encoding="utf-8"))
    ]
    assert callers == ["bot_server/pipeline/replies.py"]
