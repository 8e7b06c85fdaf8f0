"""WeCom (企业微信) self-built app callbacks as a Rasa input channel.

URL: ``/webhooks/wecom/webhook`` (set it as the app's 接收消息 URL with the
same Token and EncodingAESKey). Settings from the environment only:
WECOM_CORP_ID, WECOM_AGENT_ID, WECOM_SECRET, WECOM_TOKEN, WECOM_AES_KEY and
optionally WECOM_API_BASE (default https://qyapi.weixin.qq.com).

The GET handshake carries an encrypted ``echostr``: signed with
``msg_signature`` like a message, answered with its decrypted plaintext.
The receive id of the encryption is the corp id. The conversation is
``wecom_<UserID>``; answers go out through ``message/send`` as the app.
Everything else is shared with the Official Account (bot_server.channels.wechat.base).
"""

from __future__ import annotations

import logging
from typing import ClassVar, Mapping, Type

from bot_server.channels.wechat.api import WeComApi
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


class WeComOutput(WeChatStyleOutput):
    """Answers as the WeCom app."""

    channel_name: ClassVar[str] = "wecom"


class WeComInput(WeChatStyleInput):
    """Messages of WeCom members to our self-built app."""

    platform: ClassVar[str] = "wecom"
    sender_prefix: ClassVar[str] = "wecom_"
    ack_body: ClassVar[str] = ""
    output_class: ClassVar[Type[WeChatStyleOutput]] = WeComOutput

    @classmethod
    def name(cls) -> str:
        """``/webhooks/wecom/…``."""
        return "wecom"

    @classmethod
    def from_settings(cls, settings: RasaServerSettings) -> WeChatStyleInput:
        """The WECOM_* settings (all set: from_credentials checked)."""
        assert settings.wecom_corp_id and settings.wecom_agent_id
        assert settings.wecom_token and settings.wecom_aes_key and settings.wecom_secret
        crypto = MessageCrypto.create(
            settings.wecom_token, settings.wecom_aes_key, settings.wecom_corp_id
        )
        api = WeComApi(
            settings.wecom_corp_id,
            settings.wecom_secret,
            int(settings.wecom_agent_id),
            base_url=settings.wecom_api_base,
        )
        logger.info(
            "WeCom channel ready (agent %s, API %s)",
            api.agent_id,
            settings.wecom_api_base,
        )
        return cls(
            crypto,
            api,
            identity_secret=cls.identity_secret_of(settings),
            memory=cls.memory_of(settings),
        )

    def handshake(self, args: Mapping[str, str]) -> str:
        """Verify ``msg_signature`` over the encrypted echostr; return its plaintext."""
        assert self.crypto is not None
        timestamp, nonce = query_arg(args, "timestamp"), query_arg(args, "nonce")
        echostr = query_arg(args, "echostr")
        self.crypto.verify(query_arg(args, "msg_signature"), timestamp, nonce, echostr)
        check_timestamp(timestamp, now=self.clock())
        return self.crypto.decrypt(echostr)

    def check_inbound(self, message: InboundMessage, args: Mapping[str, str]) -> None:
        """A message for another app of the corp is refused."""
        assert isinstance(self.api, WeComApi)
        if message.agent_id and message.agent_id != str(self.api.agent_id):
            raise MalformedRequest("wrong AgentID")
