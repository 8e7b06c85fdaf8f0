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
import os
import re
from typing import ClassVar, Mapping, Type

from bot_server.channels.wechat.api import WECOM_API_BASE, WeComApi
from bot_server.channels.wechat.base import (
    WeChatStyleInput,
    WeChatStyleOutput,
    missing_settings,
    query_arg,
)
from bot_server.channels.wechat.crypto import (
    ConfigError,
    InboundMessage,
    MalformedRequest,
    MessageCrypto,
    check_timestamp,
)

logger = logging.getLogger(__name__)


class WeComOutput(WeChatStyleOutput):
    """Answers as the WeCom app."""

    channel_name: ClassVar[str] = "wecom"


class WeComInput(WeChatStyleInput):
    """Messages of WeCom members to our self-built app."""

    sender_prefix: ClassVar[str] = "wecom_"
    ack_body: ClassVar[str] = ""
    output_class: ClassVar[Type[WeChatStyleOutput]] = WeComOutput

    @classmethod
    def name(cls) -> str:
        """``/webhooks/wecom/…``."""
        return "wecom"

    @classmethod
    def from_env(cls) -> WeChatStyleInput:
        """WECOM_* settings; unconfigured (503) when incomplete or invalid."""
        values = {
            "WECOM_CORP_ID": os.environ.get("WECOM_CORP_ID", "").strip(),
            "WECOM_AGENT_ID": os.environ.get("WECOM_AGENT_ID", "").strip(),
            "WECOM_SECRET": os.environ.get("WECOM_SECRET", "").strip(),
            "WECOM_TOKEN": os.environ.get("WECOM_TOKEN", "").strip(),
            "WECOM_AES_KEY": os.environ.get("WECOM_AES_KEY", "").strip(),
        }
        base = os.environ.get("WECOM_API_BASE", "").strip() or WECOM_API_BASE
        missing = missing_settings(values)
        if missing:
            logger.info(
                "WeCom channel not configured (unset: %s): "
                "/webhooks/wecom/webhook answers 503",
                ", ".join(missing),
            )
            return cls(None, None)
        try:
            if not re.fullmatch(r"[0-9]{1,12}", values["WECOM_AGENT_ID"]):
                raise ConfigError("WECOM_AGENT_ID must be the app's numeric AgentId")
            crypto = MessageCrypto.create(
                values["WECOM_TOKEN"], values["WECOM_AES_KEY"], values["WECOM_CORP_ID"]
            )
        except ConfigError as error:
            logger.error(
                "WeCom channel disabled, /webhooks/wecom/webhook answers 503: %s",
                error,
            )
            return cls(None, None)
        api = WeComApi(
            values["WECOM_CORP_ID"],
            values["WECOM_SECRET"],
            int(values["WECOM_AGENT_ID"]),
            base_url=base,
        )
        logger.info("WeCom channel ready (agent %s, API %s)", api.agent_id, base)
        return cls(crypto, api, identity_secret=cls._identity_secret())

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
