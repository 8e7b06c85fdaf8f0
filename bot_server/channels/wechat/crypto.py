"""The WeChat callback protocol (WXBizMsgCrypt): signatures, AES, XML.

WeCom (企业微信) self-built app callbacks and WeChat Official Accounts (微信公众号)
in safe mode share one scheme, published by Tencent with its sample code:

- signature: SHA1 (hex) of the sorted concatenation of the token, the
  timestamp, the nonce and, for encrypted messages, the ciphertext;
- AES-256-CBC with key = base64decode(EncodingAESKey + "="), IV = the key's
  first 16 bytes, PKCS#7 padding to 32-byte blocks;
- plaintext = 16 random bytes + 4-byte big-endian length + message + receive
  id (the WeCom corp id, or the Official Account's AppID), which must match.

Errors are named by the HTTP status a webhook answers with: a bad signature or
a stale timestamp is 403, anything malformed 400. AES comes from
``cryptography``; nothing here is hand-written cryptography.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple, Union

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

AES_KEY_CHARS = 43
BLOCK_SIZE = 32  # the protocol pads to 32 bytes, not AES's 16
RANDOM_BYTES = 16
# Requests whose timestamp is further than this from our clock are refused as
# replays; the platform's clock is NTP-synchronised, ours should be too.
TIMESTAMP_WINDOW_S = 300
# Platform messages are a few KB at most (text content ≤ 2048 bytes).
MAX_BODY_BYTES = 64 * 1024
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# ASCII only: str.isdigit() accepts "²" and "١", which int() refuses or reads.
_DIGITS = re.compile(r"[0-9]{1,12}")


class CallbackError(Exception):
    """A callback request that is refused; ``status`` is the HTTP answer."""

    status = 400


class MalformedRequest(CallbackError):
    """Missing fields, bad XML, bad base64 or padding, wrong receive id."""

    status = 400


class BadSignature(CallbackError):
    """The signature does not match the token and the request."""

    status = 403


class StaleRequest(CallbackError):
    """The timestamp is too far from now: a replayed request."""

    status = 403


class ConfigError(ValueError):
    """A channel setting (token, EncodingAESKey, …) is unusable."""


def signature(token: str, timestamp: str, nonce: str, *extra: str) -> str:
    """The protocol's SHA1 signature over the sorted parts."""
    joined = "".join(sorted([token, timestamp, nonce, *extra]))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()


def check_signature(
    expected: Optional[str], token: str, timestamp: str, nonce: str, *extra: str
) -> None:
    """Raise BadSignature unless ``expected`` signs the parts."""
    actual = signature(token, timestamp, nonce, *extra)
    given = (expected or "").strip().lower()
    if not given or not hmac.compare_digest(actual.encode(), given.encode()):
        raise BadSignature("bad signature")


def check_timestamp(
    timestamp: str, now: Optional[float] = None, window_s: int = TIMESTAMP_WINDOW_S
) -> None:
    """Raise StaleRequest for a timestamp more than ``window_s`` from now."""
    if not _DIGITS.fullmatch(timestamp):
        raise MalformedRequest("bad timestamp")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > window_s:
        raise StaleRequest("timestamp too far from now")


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey."""
    if len(encoding_aes_key) != AES_KEY_CHARS:
        raise ConfigError(
            f"EncodingAESKey must be {AES_KEY_CHARS} characters, "
            f"got {len(encoding_aes_key)}"
        )
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as error:
        raise ConfigError("EncodingAESKey is not base64") from error
    if len(key) != 32:
        raise ConfigError("EncodingAESKey does not decode to 32 bytes")
    return key


def pkcs7_pad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    """PKCS#7 padding to ``block_size`` (1..block_size bytes are added)."""
    amount = block_size - len(data) % block_size
    return data + bytes([amount]) * amount


def pkcs7_unpad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    """Remove PKCS#7 padding; raise MalformedRequest when it is not valid."""
    if not data:
        raise MalformedRequest("bad padding")
    amount = data[-1]
    if not 1 <= amount <= block_size or amount > len(data):
        raise MalformedRequest("bad padding")
    if data[-amount:] != bytes([amount]) * amount:
        raise MalformedRequest("bad padding")
    return data[:-amount]


@dataclass(frozen=True)
class MessageCrypto:
    """Sign, encrypt and decrypt for one app (token, key, receive id)."""

    token: str
    key: bytes
    receive_id: str

    @classmethod
    def create(
        cls, token: str, encoding_aes_key: str, receive_id: str
    ) -> MessageCrypto:
        """From the settings as the platform's admin console shows them."""
        if not token:
            raise ConfigError("the token is empty")
        return cls(token, aes_key(encoding_aes_key), receive_id)

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def sign(self, timestamp: str, nonce: str, *extra: str) -> str:
        """The signature of a request or reply with this app's token."""
        return signature(self.token, timestamp, nonce, *extra)

    def verify(
        self, expected: Optional[str], timestamp: str, nonce: str, *extra: str
    ) -> None:
        """Raise BadSignature unless ``expected`` is this app's signature."""
        check_signature(expected, self.token, timestamp, nonce, *extra)

    def encrypt(self, message: str, random_prefix: Optional[bytes] = None) -> str:
        """Base64 ciphertext of ``message`` (random prefix for tests only)."""
        prefix = os.urandom(RANDOM_BYTES) if random_prefix is None else random_prefix
        if len(prefix) != RANDOM_BYTES:
            raise ValueError(f"random prefix must be {RANDOM_BYTES} bytes")
        body = message.encode("utf-8")
        plain = (
            prefix
            + struct.pack(">I", len(body))
            + body
            + self.receive_id.encode("utf-8")
        )
        encryptor = self._cipher().encryptor()
        sealed = encryptor.update(pkcs7_pad(plain)) + encryptor.finalize()
        return base64.b64encode(sealed).decode("ascii")

    def decrypt(self, encrypted: str) -> str:
        """The message inside a base64 ciphertext; checks the receive id."""
        try:
            sealed = base64.b64decode(encrypted.strip(), validate=True)
        except (binascii.Error, ValueError) as error:
            raise MalformedRequest("bad base64") from error
        if not sealed or len(sealed) % 16:
            raise MalformedRequest("bad ciphertext length")
        decryptor = self._cipher().decryptor()
        plain = pkcs7_unpad(decryptor.update(sealed) + decryptor.finalize())
        content = plain[RANDOM_BYTES:]
        if len(content) < 4:
            raise MalformedRequest("ciphertext too short")
        (length,) = struct.unpack(">I", content[:4])
        if 4 + length > len(content):
            raise MalformedRequest("bad message length")
        message, receive_id = content[4 : 4 + length], content[4 + length :]
        if not hmac.compare_digest(receive_id, self.receive_id.encode("utf-8")):
            raise MalformedRequest("wrong receiveid")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedRequest("message is not UTF-8") from error

    def seal(
        self,
        message: str,
        timestamp: str,
        nonce: str,
        outer: Optional[Mapping[str, str]] = None,
    ) -> Tuple[str, str]:
        """An encrypted envelope as the platform sends it: (msg_signature, XML).

        ``outer`` adds plain fields beside <Encrypt> (ToUserName, AgentID).
        Used by the tests to build real requests, and usable for passive replies.
        """
        encrypted = self.encrypt(message)
        fields: Dict[str, Union[str, int]] = dict(outer or {})
        fields["Encrypt"] = encrypted
        return self.sign(timestamp, nonce, encrypted), to_xml(fields)


def parse_xml(body: Union[bytes, str]) -> Dict[str, str]:
    """The child elements of an ``<xml>`` document as a flat dict.

    Raises MalformedRequest for anything but a small, plain ``<xml>`` document
    (no DOCTYPE or entities: expat is protected, but we need neither).
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if len(raw) > MAX_BODY_BYTES:
        raise MalformedRequest("body too large")
    if _DOCTYPE.search(raw):
        raise MalformedRequest("DOCTYPE not allowed")
    try:
        root = ElementTree.fromstring(raw)
    except ElementTree.ParseError as error:
        raise MalformedRequest("malformed XML") from error
    if root.tag != "xml":
        raise MalformedRequest("root element is not <xml>")
    fields: Dict[str, str] = {}
    for child in root:
        fields.setdefault(child.tag, child.text or "")
    return fields


def require(fields: Mapping[str, str], name: str) -> str:
    """A field's value; MalformedRequest when it is missing or blank."""
    value = (fields.get(name) or "").strip()
    if not value:
        raise MalformedRequest(f"missing {name}")
    return value


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def to_xml(fields: Mapping[str, Union[str, int]]) -> str:
    """An ``<xml>`` document in the platform's style (strings as CDATA)."""
    parts = [
        f"<{name}>{value if isinstance(value, int) else _cdata(value)}</{name}>"
        for name, value in fields.items()
    ]
    return "<xml>" + "".join(parts) + "</xml>"


@dataclass(frozen=True)
class InboundMessage:
    """A decrypted platform message (the fields we use)."""

    from_user: str
    to_user: str
    msg_type: str
    create_time: int
    content: str = ""
    msg_id: str = ""
    agent_id: str = ""
    event: str = ""

    @classmethod
    def from_xml(cls, plaintext: str) -> InboundMessage:
        """Parse the decrypted XML; MalformedRequest when a field is missing."""
        fields = parse_xml(plaintext)
        created = require(fields, "CreateTime")
        if not _DIGITS.fullmatch(created):
            raise MalformedRequest("bad CreateTime")
        msg_type = require(fields, "MsgType").lower()
        message = cls(
            from_user=require(fields, "FromUserName"),
            to_user=(fields.get("ToUserName") or "").strip(),
            msg_type=msg_type,
            create_time=int(created),
            content=fields.get("Content") or "",
            msg_id=(fields.get("MsgId") or "").strip(),
            agent_id=(fields.get("AgentID") or "").strip(),
            event=(fields.get("Event") or "").strip(),
        )
        if msg_type == "text" and not message.msg_id:
            raise MalformedRequest("missing MsgId")
        return message

    @property
    def dedup_key(self) -> str:
        """What identifies a redelivery: MsgId, else sender + CreateTime + event."""
        if self.msg_id:
            return f"id:{self.msg_id}"
        return f"ev:{self.from_user}:{self.create_time}:{self.event}"
