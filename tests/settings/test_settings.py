"""The settings layer: types, defaults and the one failure policy."""

from __future__ import annotations

import dataclasses
import os
from typing import Dict

import pytest

from settings import (
    ActionServerSettings,
    ActionSettings,
    PageServerSettings,
    RasaServerSettings,
    SettingsError,
    load,
    variables,
)
from settings.processes import PROCESSES

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, base64
SECRET = "s" * 32


def test_defaults_when_nothing_is_set() -> None:
    rasa = load(RasaServerSettings, {})
    assert rasa.rate_limit == "20/minute"
    assert rasa.reply_deadline_s == 8.0
    assert rasa.max_message_chars == 1000
    assert rasa.allow_intent_syntax is False
    assert rasa.web_allowed_origins == (
        "http://127.0.0.1:8080",
        "http://localhost:8080",
    )
    assert not rasa.wecom_configured and not rasa.wechat_configured
    actions = load(ActionSettings, {})
    assert actions.identity == "sender"
    assert actions.case_store_url == actions.account_db_url
    assert load(PageServerSettings, {}).rasa_public_url == "http://127.0.0.1:5005"


def test_values_are_parsed_to_their_types() -> None:
    rasa = load(
        RasaServerSettings,
        {
            "MAX_MESSAGE_CHARS": "200",
            "REPLY_DEADLINE_SECONDS": "2.5",
            "ALLOW_INTENT_SYNTAX": "1",
            "WEB_ALLOWED_ORIGINS": " https://chat.example/ , http://a:1 ",
            "RATE_LIMIT": "100/hour;20/minute",
        },
    )
    assert rasa.max_message_chars == 200
    assert rasa.reply_deadline_s == 2.5
    assert rasa.allow_intent_syntax is True
    assert rasa.web_allowed_origins == ("https://chat.example", "http://a:1")
    assert rasa.rate_limit == "100/hour;20/minute"


def test_empty_means_default() -> None:
    assert (
        load(RasaServerSettings, {"MAX_MESSAGE_CHARS": "  "}).max_message_chars == 1000
    )


@pytest.mark.parametrize(
    "cls, name, value",
    [
        (RasaServerSettings, "MAX_MESSAGE_CHARS", "-5"),
        (RasaServerSettings, "MAX_MESSAGE_CHARS", "１０"),
        (RasaServerSettings, "REPLY_DEADLINE_SECONDS", "soon"),
        (RasaServerSettings, "REPLY_DEADLINE_SECONDS", "0"),
        (RasaServerSettings, "RATE_LIMIT", "20 per minute please"),
        (RasaServerSettings, "RATE_LIMIT_STORAGE_URL", "mysql://x"),
        (RasaServerSettings, "ALLOW_INTENT_SYNTAX", "yes"),
        (RasaServerSettings, "WEB_ALLOWED_ORIGINS", "chat.example"),
        (RasaServerSettings, "WECOM_AGENT_ID", "abc"),
        (PageServerSettings, "BOT_PROFILE", "production"),
        (ActionSettings, "ACCOUNT_LOOKUP_TIMEOUT", "nan"),
        (ActionSettings, "ACCOUNT_IDENTITY", "anyone"),
        (PageServerSettings, "RASA_PUBLIC_URL", "http://rasa:5005/socket.io"),
        (PageServerSettings, "WEB_DEMO_LOGIN", "true"),
    ],
)
def test_an_unusable_value_refuses_to_start_naming_the_variable(
    cls: type, name: str, value: str
) -> None:
    with pytest.raises(SettingsError, match=name):
        load(cls, {name: value})


def test_every_problem_is_named_at_once_and_secrets_are_not_shown() -> None:
    with pytest.raises(SettingsError) as raised:
        load(
            ActionServerSettings,
            {"ACTION_SERVER_HOST": "", "ACTION_SERVER_TOKEN": "short-secret"},
        )
    with pytest.raises(SettingsError) as both:
        load(
            RasaServerSettings,
            {"MAX_MESSAGE_CHARS": "x", "IDENTITY_JWT_SECRET": "short-secret"},
        )
    assert "MAX_MESSAGE_CHARS" in str(both.value)
    message = str(raised.value) + str(both.value)
    assert "IDENTITY_JWT_SECRET" in message and "ACTION_SERVER_TOKEN" in message
    assert "short-secret" not in message


def test_action_server_needs_its_token_in_prod_and_off_loopback() -> None:
    with pytest.raises(SettingsError, match="production profile"):
        load(ActionServerSettings, {"BOT_PROFILE": "prod"})
    with pytest.raises(SettingsError, match=r"ACTION_SERVER_HOST=0\.0\.0\.0"):
        load(ActionServerSettings, {"ACTION_SERVER_HOST": "0.0.0.0"})
    prod = load(
        ActionServerSettings, {"BOT_PROFILE": "prod", "ACTION_SERVER_TOKEN": SECRET}
    )
    assert prod.token == SECRET
    assert load(ActionSettings, {"BOT_PROFILE": "prod"}).identity == "verified"
    assert load(ActionServerSettings, {"ACTION_SERVER_HOST": "::1"}).token is None


def test_a_platform_is_configured_completely_or_not_at_all() -> None:
    wecom = {
        "WECOM_CORP_ID": "ww1",
        "WECOM_AGENT_ID": "1000002",
        "WECOM_SECRET": "x",
        "WECOM_TOKEN": "t",
        "WECOM_AES_KEY": AES_KEY,
    }
    assert load(RasaServerSettings, wecom).wecom_configured
    partial = {k: v for k, v in wecom.items() if k != "WECOM_TOKEN"}
    with pytest.raises(SettingsError, match="WECOM_TOKEN"):
        load(RasaServerSettings, partial)
    with pytest.raises(SettingsError, match="WECOM_AES_KEY"):
        load(RasaServerSettings, {**wecom, "WECOM_AES_KEY": AES_KEY[:-1]})


def test_several_workers_need_the_rate_limit_counts_in_redis() -> None:
    """Each worker is a process: counting in memory would give a sender the
    limit once per worker."""
    assert load(RasaServerSettings, {}).sanic_workers == 1
    with pytest.raises(SettingsError, match="SANIC_WORKERS=2 needs RATE_LIMIT_STORAGE"):
        load(RasaServerSettings, {"SANIC_WORKERS": "2"})
    shared = {"SANIC_WORKERS": "2", "RATE_LIMIT_STORAGE_URL": "redis://r:6379/0"}
    assert load(RasaServerSettings, shared).sanic_workers == 2
    unlimited = {"SANIC_WORKERS": "2", "RATE_LIMIT": "off"}
    assert load(RasaServerSettings, unlimited).sanic_workers == 2
    with pytest.raises(SettingsError, match="SANIC_WORKERS"):
        load(RasaServerSettings, {"SANIC_WORKERS": "two"})


def test_several_workers_with_a_messaging_channel_need_its_memory_in_redis() -> None:
    """A number reply may reach another worker than the one that sent the
    buttons."""
    wechat = {
        "WECHAT_APP_ID": "wx1",
        "WECHAT_APP_SECRET": "x",
        "WECHAT_TOKEN": "t",
        "WECHAT_AES_KEY": AES_KEY,
    }
    workers = {"SANIC_WORKERS": "2", "RATE_LIMIT_STORAGE_URL": "redis://r:6379/0"}
    assert load(RasaServerSettings, workers).channel_state_url == "memory://"
    assert load(RasaServerSettings, {**wechat}).wechat_configured
    with pytest.raises(SettingsError, match="needs CHANNEL_STATE_URL"):
        load(RasaServerSettings, {**workers, **wechat})
    shared = {**workers, **wechat, "CHANNEL_STATE_URL": "redis://r:6379/0"}
    assert load(RasaServerSettings, shared).channel_state_url == "redis://r:6379/0"
    with pytest.raises(SettingsError, match="CHANNEL_STATE_URL"):
        load(RasaServerSettings, {"CHANNEL_STATE_URL": "postgres://x"})


def test_the_demo_login_needs_the_identity_secret() -> None:
    with pytest.raises(SettingsError, match="IDENTITY_JWT_SECRET"):
        load(PageServerSettings, {"WEB_DEMO_LOGIN": "1"})
    page = load(
        PageServerSettings, {"WEB_DEMO_LOGIN": "1", "IDENTITY_JWT_SECRET": SECRET}
    )
    assert page.web_demo_login and page.identity_secret == SECRET


def test_settings_are_frozen() -> None:
    rasa = load(RasaServerSettings, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        rasa.max_message_chars = 5  # type: ignore[misc]


def test_every_field_is_declared_and_every_default_parses_back() -> None:
    for cls in {cls for group in PROCESSES.values() for cls in group}:
        declared = variables(cls)
        assert len(declared) == len(dataclasses.fields(cls)), cls
        names = [variable.name for variable in declared]
        assert len(names) == len(set(names)), cls
        for variable in declared:
            assert variable.doc, variable.name
            if isinstance(variable.default, (int, float, str)) and not isinstance(
                variable.default, bool
            ):
                assert variable.parse(str(variable.default)) == variable.default


def test_accessors_read_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from settings import processes

    processes.rasa_server_settings.cache_clear()
    monkeypatch.setenv("MAX_MESSAGE_CHARS", "300")
    first = processes.rasa_server_settings()
    monkeypatch.setenv("MAX_MESSAGE_CHARS", "400")
    assert processes.rasa_server_settings() is first and first.max_message_chars == 300
    processes.rasa_server_settings.cache_clear()


def test_nothing_else_reads_the_environment() -> None:
    """Only settings/ reads variables; the runtime packages ask it."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    offenders: Dict[str, int] = {}
    for package in (
        "actions",
        "bot_server",
        "desk",
        "insights",
        "nlu",
        "web",
        "settings",
    ):
        for folder, _, files in os.walk(os.path.join(root, package)):
            for name in files:
                if not name.endswith(".py") or folder.endswith(os.sep + "settings"):
                    continue
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as handle:
                    source = handle.read()
                if "os.environ" in source or "getenv(" in source:
                    offenders[os.path.relpath(path, root)] = 1
    assert not offenders, sorted(offenders)


def test_docs_list_every_declared_variable() -> None:
    """docs/profiles.md holds the tables `python -m settings` prints."""
    from settings.__main__ import BEGIN, END, markdown

    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    with open(os.path.join(root, "docs", "profiles.md"), encoding="utf-8") as handle:
        doc = handle.read()
    assert BEGIN in doc and END in doc
    shown = doc.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert shown == markdown().strip(), "run python -m settings and paste the tables"


def test_check_command_names_the_bad_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from settings.__main__ import main

    monkeypatch.setenv("REPLY_DEADLINE_SECONDS", "-1")
    assert main(["--check", "rasa"]) == 1
    assert "REPLY_DEADLINE_SECONDS" in capsys.readouterr().err
    monkeypatch.delenv("REPLY_DEADLINE_SECONDS")
    monkeypatch.delenv("RATE_LIMIT", raising=False)
    monkeypatch.delenv("WEB_ALLOWED_ORIGINS", raising=False)
    assert main(["--check", "web"]) == 0
