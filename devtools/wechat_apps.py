"""The WeCom app and the Official Account that tests and scripts configure.

Their ids, tokens and AES key, the message crypto built from them, and the
environment that turns both messaging channels on against a platform API at a
given address (the fake of ``devtools.fake_platform`` in tests).
"""

from __future__ import annotations

import base64
from typing import Dict

from bot_server.channels.wechat.crypto import MessageCrypto

# A 43-character EncodingAESKey as the admin consoles generate them.
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")
WECOM_TOKEN = "wecomToken2026"
WECHAT_TOKEN = "wechatToken2026"
CORP_ID = "ww_test_corp"
AGENT_ID = 1000002
APP_ID = "wx_test_app"


def connector_env(api_base: str, corp_secret: str, app_secret: str) -> Dict[str, str]:
    """Both messaging channels configured, their platform APIs at ``api_base``."""
    return {
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_AGENT_ID": str(AGENT_ID),
        "WECOM_SECRET": corp_secret,
        "WECOM_TOKEN": WECOM_TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_API_BASE": api_base,
        "WECHAT_APP_ID": APP_ID,
        "WECHAT_APP_SECRET": app_secret,
        "WECHAT_TOKEN": WECHAT_TOKEN,
        "WECHAT_AES_KEY": AES_KEY,
        "WECHAT_API_BASE": api_base,
    }


def wecom_crypto(corp_id: str = CORP_ID) -> MessageCrypto:
    """The WeCom app's message crypto (``corp_id`` is the receiver id it checks)."""
    return MessageCrypto.create(WECOM_TOKEN, AES_KEY, corp_id)


def wechat_crypto(app_id: str = APP_ID) -> MessageCrypto:
    """The Official Account's message crypto (``app_id``: the receiver id it checks)."""
    return MessageCrypto.create(WECHAT_TOKEN, AES_KEY, app_id)
