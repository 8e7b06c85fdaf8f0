"""Settings from the environment, credentials.yml, Rasa's registration, domain texts."""

from __future__ import annotations

import logging
import re
from typing import Any, List

import aiohttp
import pytest
import yaml
from rasa.core.channels.channel import UserMessage
from rasa.core.run import _create_single_channel

from bot_server.channels.wechat import base
from bot_server.channels.wechat.api import (
    WECHAT_API_BASE,
    WECOM_API_BASE,
    OfficialAccountApi,
    WeComApi,
)
from bot_server.channels.wechat.official_account import OfficialAccountInput
from bot_server.channels.wechat.wecom import WeComInput
from bot_server.pipeline import replies
from devtools import signed
from devtools.fake_platform import FakePlatform
from devtools.project import load_domain
from devtools.wechat_apps import (
    AES_KEY,
    AGENT_ID,
    APP_ID,
    CORP_ID,
    WECHAT_TOKEN,
    WECOM_TOKEN,
    wechat_crypto,
    wecom_crypto,
)
from settings import SettingsError
from settings.processes import clear_settings
from tests.bot_server.channels.support import served_like_rasa
from tests.bot_server.channels.wechat.support import (
    IDENTITY_SECRET,
    ROOT,
    USER,
    FakeAgent,
)

WECOM_ENV = {
    "WECOM_CORP_ID": CORP_ID,
    "WECOM_AGENT_ID": str(AGENT_ID),
    "WECOM_SECRET": "wecom-secret",
    "WECOM_TOKEN": WECOM_TOKEN,
    "WECOM_AES_KEY": AES_KEY,
}
WECHAT_ENV = {
    "WECHAT_APP_ID": APP_ID,
    "WECHAT_APP_SECRET": "wechat-secret",
    "WECHAT_TOKEN": WECHAT_TOKEN,
    "WECHAT_AES_KEY": AES_KEY,
}
ALL_NAMES = [
    *WECOM_ENV,
    *WECHAT_ENV,
    "WECOM_API_BASE",
    "WECHAT_API_BASE",
    "IDENTITY_JWT_SECRET",
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ALL_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_wecom_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in WECOM_ENV.items():
        clean_env.setenv(name, value)
    clean_env.setenv("IDENTITY_JWT_SECRET", IDENTITY_SECRET)
    channel = WeComInput.from_credentials(None)
    assert isinstance(channel, WeComInput) and channel.configured
    assert isinstance(channel.api, WeComApi)
    assert (channel.api.base_url, channel.api.agent_id) == (WECOM_API_BASE, AGENT_ID)
    assert channel.crypto == wecom_crypto()
    assert channel.identity_secret == IDENTITY_SECRET
    clean_env.setenv("WECOM_API_BASE", "http://127.0.0.1:9/")
    clear_settings()  # read once per process: a new process
    channel = WeComInput.from_credentials(None)
    assert channel.api is not None and channel.api.base_url == "http://127.0.0.1:9"


def test_official_account_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in WECHAT_ENV.items():
        clean_env.setenv(name, value)
    channel = OfficialAccountInput.from_credentials(None)
    assert isinstance(channel, OfficialAccountInput) and channel.configured
    assert (
        isinstance(channel.api, OfficialAccountApi)
        and channel.api.base_url == WECHAT_API_BASE
    )
    assert channel.crypto == wechat_crypto()
    assert channel.identity_secret is None  # no secret: no identity (logged)


@pytest.mark.parametrize(
    "name, value, message",
    [
        (
            "WECOM_AES_KEY",
            AES_KEY[:42],
            "WECOM_AES_KEY=(secret): must be the 43-character",
        ),
        ("WECOM_AES_KEY", "?" * 43, "WECOM_AES_KEY=(secret): must be the 43-character"),
        (
            "WECOM_AGENT_ID",
            "agent-one",
            "WECOM_AGENT_ID='agent-one': must be the app's",
        ),
        ("WECOM_TOKEN", "", "WeCom is partly configured: set WECOM_TOKEN"),
    ],
)
def test_invalid_wecom_settings_refuse_to_start(
    clean_env: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    """Once a platform is meant to be on, a wrong value stops Rasa at start-up,
    named (it used to log and answer 503, which a deployment could miss)."""
    for key, good in WECOM_ENV.items():
        clean_env.setenv(key, good)
    clean_env.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        WeComInput.from_credentials(None)
    assert message in str(raised.value)
    assert not value or value not in str(raised.value) or name == "WECOM_AGENT_ID"


def test_an_invalid_official_account_key_refuses_to_start(
    clean_env: pytest.MonkeyPatch,
) -> None:
    for key, good in WECHAT_ENV.items():
        clean_env.setenv(key, good)
    clean_env.setenv("WECHAT_AES_KEY", AES_KEY + "X")
    with pytest.raises(SettingsError, match="WECHAT_AES_KEY"):
        OfficialAccountInput.from_credentials(None)


def test_values_in_credentials_yml_are_ignored_with_a_warning(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        channel = WeComInput.from_credentials({"corp_id": "x"})
    assert not channel.configured
    assert "ignored" in caplog.text


def test_credentials_yml_lists_both_channels_without_variables(
    clean_env: pytest.MonkeyPatch,
) -> None:
    text = (ROOT / "credentials.yml").read_text(encoding="utf-8")
    entries = yaml.safe_load(text)
    names = [
        "bot_server.channels.wechat.wecom.WeComInput",
        "bot_server.channels.wechat.official_account.OfficialAccountInput",
    ]
    for name in names:
        assert name in entries and not entries[name]
        # what `rasa run --credentials credentials.yml` does, with no variable set
        channel = _create_single_channel(name, entries[name])
        assert not channel.configured
    values = "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")
    )
    assert "${" not in values  # Rasa would refuse to start when one is unset


# --- domain -------------------------------------------------------------------


def test_every_response_the_channels_send_is_in_the_domain() -> None:
    responses = load_domain()["responses"]
    named = set()
    for path in (ROOT / "bot_server" / "channels" / "wechat").glob("*.py"):
        named |= set(re.findall(r"utter_[a-z0-9_]+", path.read_text(encoding="utf-8")))
    assert {base.TEXT_ONLY_RESPONSE, base.BUTTON_OPTION_RESPONSE} <= named
    assert sorted(n for n in named if n not in responses) == []
    # the guard's responses reach these channels too
    assert {"utter_service_trouble", "utter_handoff_waiting"} <= set(responses)


async def test_the_button_line_is_rendered_from_the_domain() -> None:
    line = await replies.render_text(
        FakeAgent(),
        base.BUTTON_OPTION_RESPONSE,
        "wecom_u",
        "wecom",
        number="2",
        title="没做成",
    )
    assert line == "回复 2：没做成"
    assert (
        await replies.render_text(None, base.TEXT_ONLY_RESPONSE, "u", "wecom") is None
    )


# --- Rasa's own registration, the reply guard ---------------------------------------


class RecordingAgent(FakeAgent):
    """An agent whose handle_message fails: the reply guard must answer."""

    def __init__(self) -> None:
        super().__init__()
        self.handled: List[UserMessage] = []

    async def handle_message(self, message: UserMessage) -> Any:
        self.handled.append(message)
        raise RuntimeError("tracker store down")


async def test_both_channels_under_rasas_registration_and_the_reply_guard(
    platform: FakePlatform,
) -> None:
    """Mounted as `rasa run` mounts them; a failing bot still answers (the guard)."""
    agent = RecordingAgent()
    # No agent handed in: the channels read the app's, as under `rasa run`.
    wecom = WeComInput(
        wecom_crypto(),
        WeComApi(CORP_ID, "wecom-secret", AGENT_ID, platform.base_url),
        identity_secret=IDENTITY_SECRET,
    )
    wechat = OfficialAccountInput(
        wechat_crypto(),
        OfficialAccountApi(APP_ID, "wechat-secret", platform.base_url),
    )
    async with served_like_rasa([wecom, wechat], agent) as base_url:
        async with aiohttp.ClientSession() as http:
            one = signed.post(
                wecom_crypto(),
                signed.inner_xml(USER, CORP_ID, content="你好", agent_id=AGENT_ID),
            )
            two = signed.post(
                wechat_crypto(),
                signed.inner_xml("openid-9", "gh", content="你好", msg_id="2"),
            )
            for url, request in (
                (f"{base_url}/wecom/webhook", one),
                (f"{base_url}/wechat_mp/webhook", two),
            ):
                async with http.post(
                    request.url(url), data=request.body.encode()
                ) as response:
                    assert response.status == 200
            sent = await platform.wait_sent(2)
    trouble = str(agent.domain.responses["utter_service_trouble"][0]["text"])
    assert sorted(s.user for s in sent) == sorted([USER, "openid-9"])
    assert [s.text for s in sent] == [
        f"{trouble}\n回复 1：转人工"
    ] * 2  # apology, button line
    assert {m.sender_id for m in agent.handled} == {
        f"wecom_{USER}",
        "wechat_mp_openid-9",
    }


async def test_a_model_without_our_responses_falls_back_to_plain_numbers(
    platform: FakePlatform, caplog: pytest.LogCaptureFixture
) -> None:
    """Before `make train` picks up domain/channels.yml: logged once, still usable."""
    replies._reported_missing.clear()
    channel = WeComInput(
        wecom_crypto(),
        WeComApi(CORP_ID, "wecom-secret", AGENT_ID, platform.base_url),
        agent=lambda: None,
    )
    buttons = [
        {"title": "完成了", "payload": "/affirm"},
        {"title": "没做成", "payload": "/deny"},
    ]
    with caplog.at_level(logging.ERROR):
        for _ in range(2):
            await channel.output_channel().send_text_with_buttons(
                f"wecom_{USER}", "完成了吗？", buttons
            )
    await channel.drain()
    assert [s.text for s in platform.sent] == ["完成了吗？\n1. 完成了\n2. 没做成"] * 2
    assert caplog.text.count("utter_channel_button_option missing") == 1
    assert await channel.memory.resolve(USER, "2") == "/deny"
