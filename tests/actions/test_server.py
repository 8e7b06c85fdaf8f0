"""The action server: who may call it (actions/server.py, settings/)."""

from __future__ import annotations

from typing import Dict

import pytest

from actions.server import authorised, main
from settings import ActionServerSettings, SettingsError, load
from settings.processes import is_loopback

TOKEN = "t" * 40


def test_by_default_it_listens_on_loopback_only() -> None:
    settings = load(ActionServerSettings, {})
    assert settings.host == "127.0.0.1"
    assert settings.token is None


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"ACTION_SERVER_HOST": "0.0.0.0"}, "reachable from other machines"),
        ({"ACTION_SERVER_HOST": "10.0.0.5"}, "reachable from other machines"),
        ({"BOT_PROFILE": "prod"}, "production profile"),
        ({"ACTION_SERVER_TOKEN": "short"}, "at least 32"),
    ],
)
def test_settings_that_would_expose_it_are_refused(
    env: Dict[str, str], words: str
) -> None:
    with pytest.raises(SettingsError, match=words):
        load(ActionServerSettings, env)


def test_the_server_refuses_to_start_with_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from settings import processes

    monkeypatch.setenv("ACTION_SERVER_HOST", "0.0.0.0")
    monkeypatch.delenv("ACTION_SERVER_TOKEN", raising=False)
    processes.action_server_settings.cache_clear()
    assert main(["--port", "0"]) == 2
    assert "ACTION_SERVER_TOKEN" in capsys.readouterr().err
    processes.action_server_settings.cache_clear()


def test_any_address_with_a_token() -> None:
    settings = load(
        ActionServerSettings,
        {
            "ACTION_SERVER_HOST": "0.0.0.0",
            "ACTION_SERVER_TOKEN": TOKEN,
            "BOT_PROFILE": "prod",
        },
    )
    assert (settings.host, settings.token) == ("0.0.0.0", TOKEN)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("192.168.1.2", False), ("actions", False)],
)  # fmt: skip
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_header_must_match_the_token_exactly() -> None:
    assert authorised(TOKEN, TOKEN)
    assert not authorised(None, TOKEN)
    assert not authorised("", TOKEN)
    assert not authorised(TOKEN + "x", TOKEN)
    assert not authorised(TOKEN[:-1], TOKEN)
    assert authorised(None, None)  # loopback without a token
