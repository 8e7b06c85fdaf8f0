"""WeChat Official Account (微信公众号) in safe mode as a Rasa input channel.

Consumers (借呗 users) reach a brand through its Official Account, not through
WeCom (which is for a company's own staff); the callback crypto is the same.

URL: ``/webhooks/wechat_mp/webhook`` (服务器配置 → URL, with the same Token and
EncodingAESKey, 消息加解密方式 = 安全模式). Settings from the environment only:
WECHAT_APP_ID, WECHAT_APP_SECRET, WECHAT_TOKEN, WECHAT_AES_KEY and optionally
WECHAT_API_BASE (default https://api.weixin.qq.com).

- GET handshake: plain ``signature`` over token/timestamp/nonce; the plain
  ``echostr`` is echoed back.
- POST: only encrypted messages (``msg_signature`` over the <Encrypt> field;
  the receive id is the AppID); plain-mode messages are refused (400).
- Acknowledged with ``success``; answers go out through the customer-service
  message API (the platform allows it for 48 hours after the user's last
  message). The conversation is ``wechat_mp_<openid>``.
"""

from __future__ import annotations

import logging
from typing import ClassVar, Mapping, Type

from bot_server.channels.wechat.api import OfficialAccountApi
from bot_server.channels.wechat.base import (
    WeChatStyleInput,
    WeChatStyleOutput,
    query_arg,
)
from bot_server.channels.wechat.crypto import (
    InboundMessage,
    MalformedRequest,
    MessageCrypto,
    check_timestamp,
)
from settings import RasaServerSettings

logger = logging.getLogger(__name__)


class OfficialAccountOutput(WeChatStyleOutput):
    """Answers as the Official Account (customer-service messages)."""

    channel_name: ClassVar[str] = "wechat_mp"


class OfficialAccountInput(WeChatStyleInput):
    """Messages of an Official Account's followers."""

    platform: ClassVar[str] = "wechat"
    sender_prefix: ClassVar[str] = "wechat_mp_"
    ack_body: ClassVar[str] = "success"
    output_class: ClassVar[Type[WeChatStyleOutput]] = OfficialAccountOutput

    @classmethod
    def name(cls) -> str:
        """``/webhooks/wechat_mp/…``."""
        return "wechat_mp"

    @classmethod
    def from_settings(cls, settings: RasaServerSettings) -> WeChatStyleInput:
        """The WECHAT_* settings (all set: from_credentials checked)."""
        assert settings.wechat_app_id and settings.wechat_app_secret
        assert settings.wechat_token and settings.wechat_aes_key
        crypto = MessageCrypto.create(
            settings.wechat_token, settings.wechat_aes_key, settings.wechat_app_id
        )
        api = OfficialAccountApi(
            settings.wechat_app_id,
            settings.wechat_app_secret,
            base_url=settings.wechat_api_base,
        )
        logger.info("Official Account channel ready (API %s)", settings.wechat_api_base)
        return cls(
            crypto,
            api,
            identity_secret=cls.identity_secret_of(settings),
            memory=cls.memory_of(settings),
        )

    def handshake(self, args: Mapping[str, str]) -> str:
        """Verify the plain ``signature``; echo ``echostr``."""
        assert self.crypto is not None
        timestamp, nonce = query_arg(args, "timestamp"), query_arg(args, "nonce")
        echostr = query_arg(args, "echostr")
        self.crypto.verify(query_arg(args, "signature"), timestamp, nonce)
        check_timestamp(timestamp, now=self.clock())
        return echostr

    def check_inbound(self, message: InboundMessage, args: Mapping[str, str]) -> None:
        """The ``openid`` of the URL, when given, is the sender's."""
        openid = args.get("openid", "")
        if openid and openid != message.from_user:
            raise MalformedRequest("openid does not match FromUserName")
