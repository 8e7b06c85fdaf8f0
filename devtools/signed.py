"""Real platform requests, signed and encrypted with the channel's own crypto."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Union
from urllib.parse import urlencode

from bot_server.channels.wechat.crypto import MessageCrypto, to_xml


@dataclass(frozen=True)
class Signed:
    """Query parameters and body of one callback request."""

    query: Dict[str, str]
    body: str

    def url(self, webhook: str) -> str:
        """The request's URL at ``webhook``, query included."""
        return f"{webhook}?{urlencode(self.query)}"


def now() -> str:
    """The current Unix time as the platforms send it."""
    return str(int(time.time()))


def inner_xml(
    user: str,
    to_user: str,
    msg_type: str = "text",
    content: str = "",
    msg_id: Optional[str] = "1",
    agent_id: Optional[int] = None,
    event: Optional[str] = None,
    create_time: Optional[int] = None,
) -> str:
    """The plaintext XML of a platform message."""
    fields: Dict[str, Union[str, int]] = {
        "ToUserName": to_user,
        "FromUserName": user,
        "CreateTime": create_time if create_time is not None else int(time.time()),
        "MsgType": msg_type,
    }
    if msg_type == "text":
        fields["Content"] = content
    if event is not None:
        fields["Event"] = event
    if msg_id is not None:
        fields["MsgId"] = msg_id
    if agent_id is not None:
        fields["AgentID"] = agent_id
    return to_xml(fields)


def post(
    crypto: MessageCrypto,
    plaintext: str,
    timestamp: Optional[str] = None,
    nonce: str = "1372623149",
    outer: Optional[Mapping[str, str]] = None,
    extra_query: Optional[Mapping[str, str]] = None,
) -> Signed:
    """An encrypted POST as the platform sends it (msg_signature over Encrypt)."""
    stamp = timestamp or now()
    msg_signature, body = crypto.seal(plaintext, stamp, nonce, outer)
    query = {"msg_signature": msg_signature, "timestamp": stamp, "nonce": nonce}
    return Signed({**query, **(extra_query or {})}, body)


def wecom_handshake(
    crypto: MessageCrypto, echo: str, timestamp: Optional[str] = None
) -> Signed:
    """WeCom's GET URL verification: an encrypted echostr signed like a message."""
    stamp, nonce = timestamp or now(), "263014780"
    echostr = crypto.encrypt(echo)
    query = {
        "msg_signature": crypto.sign(stamp, nonce, echostr),
        "timestamp": stamp,
        "nonce": nonce,
        "echostr": echostr,
    }
    return Signed(query, "")


def mp_handshake(
    crypto: MessageCrypto, echo: str, timestamp: Optional[str] = None
) -> Signed:
    """The Official Account's GET verification: plain signature, plain echostr."""
    stamp, nonce = timestamp or now(), "263014780"
    query = {
        "signature": crypto.sign(stamp, nonce),
        "timestamp": stamp,
        "nonce": nonce,
        "echostr": echo,
    }
    return Signed(query, "")
