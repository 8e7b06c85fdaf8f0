"""The relay (desk/relay.py) against a fake Rasa HTTP API: what it asks Rasa
to do, with which parameters, and how it fails."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Dict, List

import pytest
from aiohttp import web

from desk.relay import RasaRelay, RelayError
from devtools.servers import free_port


@dataclass
class Call:
    path: str
    query: Dict[str, str]
    body: Any


@dataclass
class FakeRasa:
    """Rasa's HTTP API as far as the relay uses it; records every call."""

    calls: List[Call] = field(default_factory=list)
    status: int = 200
    answer: Any = field(default_factory=lambda: {"events": []})
    hang: bool = False
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.calls.append(
            Call(
                request.raw_path.split("?")[0],
                dict(request.query),
                await request.json(),
            )
        )
        if self.hang:
            await asyncio.Event().wait()  # never answers: the relay's timeout ends it
        if isinstance(self.answer, str):
            return web.Response(status=self.status, text=self.answer)
        return web.json_response(self.answer, status=self.status)


@pytest.fixture
async def rasa() -> AsyncIterator[FakeRasa]:
    fake = FakeRasa()
    app = web.Application()
    app.router.add_post("/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


@pytest.fixture
async def relay(rasa: FakeRasa) -> AsyncIterator[RasaRelay]:
    made = RasaRelay(rasa.url, "t0ken", timeout_s=2.0)
    yield made
    await made.close()


def listen(conversation: str = "s1") -> Call:
    return Call(
        f"/conversations/{conversation}/tracker/events",
        {"output_channel": "latest", "token": "t0ken"},
        [{"event": "action", "name": "action_listen"}],
    )


async def test_joined_sets_the_name_and_says_the_domains_sentence(
    rasa: FakeRasa, relay: RasaRelay
) -> None:
    await relay.joined("s1", "agent1", "小安")
    assert rasa.calls == [
        Call(
            "/conversations/s1/tracker/events",
            {"output_channel": "latest", "token": "t0ken"},
            [{"event": "slot", "name": "human_agent_name", "value": "小安"}],
        ),
        Call(
            "/conversations/s1/execute",
            {"output_channel": "latest", "token": "t0ken"},
            {"name": "utter_human_joined"},
        ),
        listen(),
    ]


async def test_a_message_is_the_agents_bot_event_sent_on_the_users_channel(
    rasa: FakeRasa, relay: RasaRelay
) -> None:
    await relay.message("s1", "  您好，我是小安  ", "agent1", "小安")
    assert rasa.calls == [
        Call(
            "/conversations/s1/tracker/events",
            {
                "output_channel": "latest",
                "execute_side_effects": "true",
                "token": "t0ken",
            },
            [
                {
                    "event": "bot",
                    "text": "您好，我是小安",
                    "metadata": {"human_agent": {"id": "agent1", "name": "小安"}},
                }
            ],
        )
    ]


async def test_personal_data_in_an_agents_message_is_masked(
    rasa: FakeRasa, relay: RasaRelay
) -> None:
    await relay.message("s1", "请拨 13812345678，验证码是 123456", "agent1", "小安")
    [event] = rasa.calls[0].body
    assert event["text"] == "请拨 138****5678，验证码******"


@pytest.mark.parametrize("text", ["", "   ", "\u200b"])
async def test_an_empty_message_is_refused_before_rasa(
    rasa: FakeRasa, relay: RasaRelay, text: str
) -> None:
    with pytest.raises(ValueError, match="empty"):
        await relay.message("s1", text, "agent1", "小安")
    assert rasa.calls == []


async def test_resolved_resumes_then_the_bot_says_it_is_back(
    rasa: FakeRasa, relay: RasaRelay
) -> None:
    await relay.resolved("s1", "agent1", "小安")
    assert [(c.path.rsplit("/", 1)[-1], c.body) for c in rasa.calls] == [
        (
            "events",
            [
                {"event": "slot", "name": "human_agent_name", "value": "小安"},
                {"event": "resume"},
            ],
        ),
        ("execute", {"name": "utter_human_resolved"}),
        ("events", [{"event": "action", "name": "action_listen"}]),
    ]


async def test_the_conversation_id_is_one_path_segment(
    rasa: FakeRasa, relay: RasaRelay
) -> None:
    await relay.message("wecom_a/b?c", "好的", "agent1", "小安")
    assert rasa.calls[0].path == "/conversations/wecom_a%2Fb%3Fc/tracker/events"


async def test_without_a_token_no_token_is_sent(rasa: FakeRasa) -> None:
    relay = RasaRelay(rasa.url + "/", None)
    try:
        await relay.message("s1", "好的", "agent1", "小安")
    finally:
        await relay.close()
    assert "token" not in rasa.calls[0].query
    assert rasa.calls[0].path == "/conversations/s1/tracker/events"


@pytest.mark.parametrize(
    ("status", "answer", "said"),
    [
        (
            401,
            {"message": "User is not authenticated."},
            "HTTP 401 (User is not authenticated.)",
        ),
        (500, {"message": "An unexpected error occurred."}, "HTTP 500"),
        (409, "conflict" * 100, "HTTP 409 (conflict"),
    ],
)
async def test_a_refusal_says_why(
    rasa: FakeRasa, relay: RasaRelay, status: int, answer: Any, said: str
) -> None:
    rasa.status, rasa.answer = status, answer
    with pytest.raises(RelayError) as refused:
        await relay.joined("s1", "agent1", "小安")
    assert said in str(refused.value) and "conversation s1" in str(refused.value)
    assert len(str(refused.value)) < 400
    assert len(rasa.calls) == 1  # the next steps are not attempted


async def test_rasa_down_says_so() -> None:
    relay = RasaRelay(f"http://127.0.0.1:{free_port()}", "t0ken", timeout_s=2.0)
    try:
        with pytest.raises(RelayError, match=r"unreachable at http://127\.0\.0\.1"):
            await relay.message("s1", "好的", "agent1", "小安")
    finally:
        await relay.close()


async def test_a_rasa_that_does_not_answer_is_given_up_on(rasa: FakeRasa) -> None:
    rasa.hang = True
    relay = RasaRelay(rasa.url, None, timeout_s=0.3)
    try:
        with pytest.raises(RelayError, match=r"did not answer .* within 0\.3 s"):
            await relay.resolved("s1", "agent1", "小安")
    finally:
        await relay.close()


async def test_close_then_use_again_opens_a_new_session(
    rasa: FakeRasa, relay: RasaRelay
) -> None:
    await relay.close()
    await relay.close()
    await relay.message("s1", "好的", "agent1", "小安")
    assert len(rasa.calls) == 1
