"""End to end: WeCom and Official Account messages through the real bot.

The real Rasa server and action server (credentials.yml, the trained model)
with both channels configured from the environment, their API base URLs
pointing at a local fake of the platforms' APIs. ``ACCOUNT_IDENTITY=verified``:
an account is read only through the identity the channel signs for the
platform-verified user, never because of the conversation id. One bot for
the module: each start costs about 40 s.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from actions.identity import METADATA_KEY, verify
from tests.bot_server.channels.wechat import signed
from tests.bot_server.channels.wechat.fake_platform import (
    WECHAT_SEND,
    WECOM_SEND,
    FakePlatform,
    Sent,
)
from tests.bot_server.channels.wechat.support import (
    AGENT_ID,
    APP_ID,
    CORP_ID,
    connector_env,
    wechat_crypto,
    wecom_crypto,
)
from tests.e2e.harness import Bot, running_bot

pytestmark = pytest.mark.e2e

ACCOUNT = "demo_account_frozen"  # fixture account ids stand in for platform user ids
SECRET = "e2e-identity-secret-0123456789abcdef"
QUESTION = "我的支付宝里找不到借呗了"
REPLY_TIMEOUT_S = 180  # a loaded 2-core machine
# "回复 1：完成了" (domain/channels.yml), or "1. 完成了" from a model trained before it
BUTTON_LINE = r"1\D{0,4}完成了"


@dataclass
class Connected:
    bot: Bot
    platform: FakePlatform
    workdir: Path


@pytest.fixture(scope="module")
def connected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connected]:
    platform = FakePlatform(corp_id=CORP_ID, app_id=APP_ID)
    workdir = tmp_path_factory.mktemp("connectors")
    with platform.in_thread() as base:
        env = {
            **connector_env(base, platform.corp_secret, platform.app_secret),
            "IDENTITY_JWT_SECRET": SECRET,
            "ACCOUNT_IDENTITY": "verified",
        }
        with running_bot(workdir, extra_env=env) as bot:
            yield Connected(bot, platform, workdir)


def post(url: str, request: signed.Signed) -> Tuple[int, str, float]:
    """Status, body and seconds until the acknowledgement."""
    http = urllib.request.Request(
        request.url(url),
        data=request.body.encode(),
        method="POST",
        headers={"Content-Type": "text/xml"},
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(http, timeout=30) as response:
            return (
                response.status,
                response.read().decode(),
                time.perf_counter() - started,
            )
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), time.perf_counter() - started


def sent_to(platform: FakePlatform, path: str, user: str, pattern: str) -> List[Sent]:
    """Wait until a message to ``user`` matches ``pattern``; all messages to them."""

    def mine(sent: List[Sent]) -> List[Sent]:
        return [s for s in sent if s.path == path and s.user == user]

    found = platform.wait_until(
        lambda sent: any(re.search(pattern, s.text) for s in mine(sent)),
        REPLY_TIMEOUT_S,
    )
    return mine(found)


def user_event(bot: Bot, sender: str, text: str) -> Dict[str, Any]:
    """The user event with ``text``, once stored.

    Rasa saves the tracker after the whole turn, so the answers can reach the
    fake API before the event is readable: poll.
    """
    deadline = time.monotonic() + REPLY_TIMEOUT_S
    while True:
        events = bot.tracker(sender)["events"]
        found = [
            e for e in events if e.get("event") == "user" and e.get("text") == text
        ]
        if found or time.monotonic() > deadline:
            assert found, f"no user event {text!r} in {sender}"
            return dict(found[-1])
        time.sleep(0.2)


def test_a_wecom_user_gets_the_diagnosis_of_their_own_account(
    connected: Connected,
) -> None:
    bot, platform = connected.bot, connected.platform
    webhook = f"{bot.rasa_url}/webhooks/wecom/webhook"
    inner = signed.inner_xml(
        ACCOUNT, CORP_ID, "text", QUESTION, "e2e-wecom-1", AGENT_ID
    )
    request = signed.post(
        wecom_crypto(), inner, outer={"ToUserName": CORP_ID, "AgentID": str(AGENT_ID)}
    )
    status, body, ack_s = post(webhook, request)
    assert (status, body) == (200, "")
    print(f"\nWeCom ack through the real Rasa server: {ack_s * 1000:.1f} ms")
    assert ack_s < 2.0

    # the turn ends with the step's buttons, as numbered lines
    sent = sent_to(platform, WECOM_SEND, ACCOUNT, BUTTON_LINE)
    texts = [s.text for s in sent]
    assert any(re.search(BUTTON_LINE, t) for t in texts), texts
    assert any("冻结" in t for t in texts), texts
    assert any(f"演示账户 {ACCOUNT}" in t for t in texts), texts  # the record was read
    assert all(s.body["agentid"] == AGENT_ID for s in sent)

    # the message carried a signed identity for the WeCom user
    event = user_event(bot, f"wecom_{ACCOUNT}", QUESTION)
    assert verify(event["metadata"][METADATA_KEY], SECRET) == ACCOUNT

    # a reply of "1" is the first button
    again = signed.inner_xml(ACCOUNT, CORP_ID, "text", "1", "e2e-wecom-2", AGENT_ID)
    assert post(webhook, signed.post(wecom_crypto(), again))[:2] == (200, "")
    answered = user_event(bot, f"wecom_{ACCOUNT}", "/affirm")
    assert answered["parse_data"]["intent"]["name"] == "affirm"


def test_the_same_id_without_a_signed_identity_reads_no_account(
    connected: Connected,
) -> None:
    """Contrast: over REST the conversation id alone proves nothing (verified profile)."""
    connected.bot.say(ACCOUNT, QUESTION)
    said = connected.bot.utterances(ACCOUNT)
    assert "utter_lookup_found" not in said
    assert any(name.startswith("utter_ask_") for name in said), said


def test_an_official_account_follower_gets_the_diagnosis_too(
    connected: Connected,
) -> None:
    bot, platform = connected.bot, connected.platform
    webhook = f"{bot.rasa_url}/webhooks/wechat_mp/webhook"
    inner = signed.inner_xml(ACCOUNT, "gh_e2e", "text", QUESTION, "e2e-mp-1")
    request = signed.post(
        wechat_crypto(),
        inner,
        outer={"ToUserName": "gh_e2e"},
        extra_query={"openid": ACCOUNT, "encrypt_type": "aes"},
    )
    status, body, ack_s = post(webhook, request)
    assert (status, body) == (200, "success")
    print(f"\nOfficial Account ack through the real Rasa server: {ack_s * 1000:.1f} ms")
    sent = sent_to(platform, WECHAT_SEND, ACCOUNT, "冻结")
    assert any("冻结" in s.text for s in sent), [s.text for s in sent]
    event = user_event(bot, f"wechat_mp_{ACCOUNT}", QUESTION)
    assert verify(event["metadata"][METADATA_KEY], SECRET) == ACCOUNT


def test_refused_requests_never_reach_the_bot(connected: Connected) -> None:
    bot = connected.bot
    inner = signed.inner_xml(
        "intruder", CORP_ID, "text", QUESTION, "e2e-bad-1", AGENT_ID
    )
    request = signed.post(wecom_crypto(), inner)
    request.query["msg_signature"] = "0" * 40
    assert post(f"{bot.rasa_url}/webhooks/wecom/webhook", request)[0] == 403
    assert (
        post(
            f"{bot.rasa_url}/webhooks/wecom/webhook",
            signed.Signed(request.query, "<xml"),
        )[0]
        == 400
    )
    events = bot.tracker("wecom_intruder")["events"]
    assert not [e for e in events if e.get("event") == "user"]
