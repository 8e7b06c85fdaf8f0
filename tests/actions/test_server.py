"""The action server's settings: who may call it (actions/server.py)."""

from __future__ import annotations

import pytest

from actions.server import (
    ConfigError,
    authorised,
    is_loopback,
    load_server_settings,
)

TOKEN = "t" * 40


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACTION_SERVER_HOST", "ACTION_SERVER_TOKEN", "BOT_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def test_by_default_it_listens_on_loopback_only() -> None:
    settings = load_server_settings()
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
    monkeypatch: pytest.MonkeyPatch, env: dict, words: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=words):
        load_server_settings()


def test_any_address_with_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTION_SERVER_HOST", "0.0.0.0")
    monkeypatch.setenv("ACTION_SERVER_TOKEN", TOKEN)
    monkeypatch.setenv("BOT_PROFILE", "prod")
    settings = load_server_settings()
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
