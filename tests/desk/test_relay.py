"""The relay against a stand-in of Rasa's HTTP API: what it calls, and RelayError."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Dict, List

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from desk.relay import RasaRelay, RelayError
from devtools.servers import free_port


@pytest.fixture
async def rasa() -> AsyncIterator[Dict[str, Any]]:
    seen: List[Dict[str, Any]] = []
    state: Dict[str, Any] = {"status": 200, "delay": 0.0, "seen": seen}

    async def handle(request: web.Request) -> web.Response:
        await asyncio.sleep(state["delay"])
        seen.append(
            {
                "path": request.raw_path.split("?")[0],
                "query": dict(request.query),
                "body": await request.json(),
            }
        )
        return web.json_response({}, status=state["status"])

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    server = TestServer(app)
    await server.start_server()
    state["url"] = str(server.make_url("")).rstrip("/")
    yield state
    await server.close()


async def test_the_calls_rasa_gets(rasa: Dict[str, Any]) -> None:
    relay = RasaRelay(rasa["url"], "t" * 32)
    await relay.joined("conv/1", "amy", "小美")
    await relay.message("conv/1", "您好", "amy", "小美")
    await relay.resolved("conv/1", "amy", "小美")
    await relay.close()
    paths = [call["path"] for call in rasa["seen"]]
    assert paths == [
        "/conversations/conv%2F1/execute",
        "/conversations/conv%2F1/tracker/events",
        "/conversations/conv%2F1/execute",
        "/conversations/conv%2F1/tracker/events",
    ]
    for call in rasa["seen"]:
        assert call["query"]["token"] == "t" * 32
        assert call["query"]["output_channel"] == "latest"
    message = rasa["seen"][1]
    assert message["query"]["execute_side_effects"] == "true"
    assert message["body"]["event"] == "bot" and message["body"]["text"] == "您好"
    assert message["body"]["metadata"] == {"human_agent": {"id": "amy", "name": "小美"}}
    assert rasa["seen"][3]["body"]["event"] == "resume"


async def test_rasa_refusing_or_away_is_a_relay_error(rasa: Dict[str, Any]) -> None:
    rasa["status"] = 401
    relay = RasaRelay(rasa["url"], None)
    with pytest.raises(RelayError, match="401"):
        await relay.message("c", "hi", "amy", "小美")
    assert "token" not in rasa["seen"][0]["query"]
    rasa["status"], rasa["delay"] = 200, 2.0
    slow = RasaRelay(rasa["url"], None, timeout_s=0.2)
    with pytest.raises(RelayError):
        await slow.joined("c", "amy", "小美")
    away = RasaRelay(f"http://127.0.0.1:{free_port()}", None)
    with pytest.raises(RelayError, match="unreachable"):
        await away.resolved("c", "amy", "小美")
    for each in (relay, slow, away):
        await each.close()
