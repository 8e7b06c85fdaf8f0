"""The callback protocol (channels/wechat/crypto.py) against published and independent vectors."""

from __future__ import annotations

import base64
import hashlib
import struct
import time

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot_server.channels.wechat import crypto as wc
from bot_server.channels.wechat.crypto import (
    BadSignature,
    ConfigError,
    InboundMessage,
    MalformedRequest,
    MessageCrypto,
    StaleRequest,
)
from devtools.wechat_apps import AES_KEY, CORP_ID, wecom_crypto

# Tencent's published sample (WXBizMsgCrypt samples, WeCom doc "加解密方案说明").
OFFICIAL_TOKEN = "QDG6eK"
OFFICIAL_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
OFFICIAL_RECEIVE_ID = "wx5823bf96d3bd56c7"
OFFICIAL_ECHO = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
    "plaintext": "1616140317555161061",
}
OFFICIAL_POST = {
    "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
    "timestamp": "1409659813",
    "nonce": "1372623149",
    "encrypt": (
        "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvu"
        "JTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwG"
        "c2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9"
        "EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0l"
        "XdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
    ),
}


def official() -> MessageCrypto:
    return MessageCrypto.create(OFFICIAL_TOKEN, OFFICIAL_KEY, OFFICIAL_RECEIVE_ID)


# --- published vectors --------------------------------------------------------


def test_the_published_url_verification_vector() -> None:
    crypto = official()
    v = OFFICIAL_ECHO
    crypto.verify(v["msg_signature"], v["timestamp"], v["nonce"], v["echostr"])
    assert crypto.decrypt(v["echostr"]) == v["plaintext"]


def test_the_published_message_vector() -> None:
    crypto = official()
    v = OFFICIAL_POST
    crypto.verify(v["msg_signature"], v["timestamp"], v["nonce"], v["encrypt"])
    message = InboundMessage.from_xml(crypto.decrypt(v["encrypt"]))
    assert message == InboundMessage(
        from_user="mycreate",
        to_user=OFFICIAL_RECEIVE_ID,
        msg_type="text",
        create_time=1409659813,
        content="hello",
        msg_id="4561255354251345929",
        agent_id="218",
    )


# --- an independent vector: plain hashlib / cryptography calls ------------------


def independent_ciphertext(message: bytes, prefix: bytes, receive_id: bytes) -> str:
    key = base64.b64decode(AES_KEY + "=")
    plain = prefix + struct.pack(">I", len(message)) + message + receive_id
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def test_encryption_matches_an_independent_computation() -> None:
    prefix = bytes(range(100, 116))
    message = "<xml><Content><![CDATA[我的支付宝里找不到借呗了]]></Content></xml>"
    expected = independent_ciphertext(message.encode(), prefix, CORP_ID.encode())
    crypto = wecom_crypto()
    assert crypto.encrypt(message, random_prefix=prefix) == expected
    assert crypto.decrypt(expected) == message


def test_signature_matches_an_independent_computation() -> None:
    parts = ["wecomToken2026", "1700000000", "nonce1", "c2VhbGVk"]
    expected = hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()
    assert wc.signature(*parts) == expected
    assert wecom_crypto().sign("1700000000", "nonce1", "c2VhbGVk") == expected


# --- signature ------------------------------------------------------------------


def test_a_wrong_or_missing_signature_is_refused() -> None:
    crypto = wecom_crypto()
    good = crypto.sign("1", "2", "x")
    crypto.verify(good.upper(), "1", "2", "x")  # hex case does not matter
    for bad in ["", None, good[:-1] + ("0" if good[-1] != "0" else "1")]:
        with pytest.raises(BadSignature):
            crypto.verify(bad, "1", "2", "x")
    with pytest.raises(BadSignature):  # another token
        MessageCrypto.create("other", AES_KEY, CORP_ID).verify(good, "1", "2", "x")
    with pytest.raises(BadSignature):  # the ciphertext is signed too
        crypto.verify(good, "1", "2", "y")


# --- round trip ---------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    ["", "a", "x" * 11, "x" * 12, "借呗" * 2000, "<xml>]]></xml>", "emoji 🙂 \n tab\t"],
)
def test_encrypt_decrypt_round_trip(message: str) -> None:
    crypto = wecom_crypto()
    sealed = crypto.encrypt(message)
    assert len(base64.b64decode(sealed)) % 32 == 0
    assert crypto.decrypt(sealed) == message
    assert crypto.encrypt(message) != sealed  # a random prefix each time


def test_seal_builds_a_signed_envelope() -> None:
    crypto = wecom_crypto()
    signature, body = crypto.seal("hi", "1700000000", "n", {"ToUserName": CORP_ID})
    fields = wc.parse_xml(body)
    assert fields["ToUserName"] == CORP_ID
    crypto.verify(signature, "1700000000", "n", fields["Encrypt"])
    assert crypto.decrypt(fields["Encrypt"]) == "hi"


# --- decryption errors --------------------------------------------------------


def pad32(plain: bytes) -> bytes:
    amount = 32 - len(plain) % 32
    return plain + bytes([amount]) * amount


def raw_ciphertext(plain: bytes) -> str:
    key = base64.b64decode(AES_KEY + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


@pytest.mark.parametrize(
    "last_block",
    [
        b"\x00" * 32,  # pad 0
        b"\x21" * 32,  # pad 33 > block size
        b"A" * 28 + b"\x05\x04\x04\x04",  # inconsistent pad bytes
    ],
)
def test_bad_padding_is_refused(last_block: bytes) -> None:
    sealed = raw_ciphertext(
        b"R" * 16 + struct.pack(">I", 2) + b"hi" + b"x" * 10 + last_block
    )
    with pytest.raises(MalformedRequest, match="padding"):
        wecom_crypto().decrypt(sealed)


def test_padding_helpers() -> None:
    for n in range(0, 70):
        padded = wc.pkcs7_pad(b"a" * n)
        assert len(padded) % 32 == 0 and len(padded) > n
        assert wc.pkcs7_unpad(padded) == b"a" * n
    with pytest.raises(MalformedRequest):
        wc.pkcs7_unpad(b"")


def test_a_message_for_another_receiver_is_refused() -> None:
    sealed = wecom_crypto(corp_id="ww_other_corp").encrypt("hi")
    with pytest.raises(MalformedRequest, match="receiveid"):
        wecom_crypto().decrypt(sealed)


def test_a_message_sealed_with_another_key_is_refused() -> None:
    other = MessageCrypto.create("t", "A" * 42 + "E", CORP_ID)
    with pytest.raises(MalformedRequest):
        wecom_crypto().decrypt(other.encrypt("hi" * 40))


@pytest.mark.parametrize(
    "sealed, reason",
    [
        ("not base64!", "base64"),
        ("", "ciphertext length"),
        (base64.b64encode(b"x" * 17).decode(), "ciphertext length"),
        (raw_ciphertext(pad32(b"R" * 16 + b"\x00\x00")), "too short"),
        (raw_ciphertext(pad32(b"R" * 16 + struct.pack(">I", 999) + b"hi")), "length"),
        (
            raw_ciphertext(
                pad32(b"R" * 16 + struct.pack(">I", 2) + b"\xff\xfe" + CORP_ID.encode())
            ),
            "UTF-8",
        ),
    ],
)
def test_malformed_ciphertexts_are_refused(sealed: str, reason: str) -> None:
    with pytest.raises(MalformedRequest, match=reason):
        wecom_crypto().decrypt(sealed)


# --- settings -----------------------------------------------------------------


@pytest.mark.parametrize(
    "key, reason",
    [
        (AES_KEY[:-1], "43 characters, got 42"),
        (AES_KEY + "A", "43 characters, got 44"),
        ("!" * 43, "not base64"),
    ],
)
def test_the_encoding_aes_key_is_validated(key: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        MessageCrypto.create("t", key, CORP_ID)


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ConfigError):
        MessageCrypto.create("", AES_KEY, CORP_ID)


# --- timestamps ---------------------------------------------------------------


def test_timestamps_within_five_minutes_pass_and_others_are_stale() -> None:
    now = 1_800_000_000.0
    for delta in (0, 299, -299, 300):
        wc.check_timestamp(str(int(now + delta)), now=now)
    for delta in (301, -301, -86400):
        with pytest.raises(StaleRequest):
            wc.check_timestamp(str(int(now + delta)), now=now)
    for bad in ("", "abc", "-5", "1" * 20, "²", "١٧٠٠٠٠٠٠٠٠", " 1700000000"):
        with pytest.raises(MalformedRequest):
            wc.check_timestamp(bad, now=now)
    wc.check_timestamp(str(int(time.time())))


# --- XML ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"<xml><Encrypt>abc</Encrypt>", "malformed XML"),
        (b"", "malformed XML"),
        (b"not xml at all", "malformed XML"),
        (b"<root><Encrypt>abc</Encrypt></root>", "not <xml>"),
        (
            b'<!DOCTYPE xml [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>',
            "DOCTYPE",
        ),
        (b"<xml><A>" + b"x" * 70_000 + b"</A></xml>", "too large"),
    ],
)
def test_malformed_xml_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedRequest, match=reason):
        wc.parse_xml(body)


def test_xml_round_trip_with_cdata_terminator() -> None:
    xml = wc.to_xml({"Content": "a]]>b<c>&", "CreateTime": 12})
    assert wc.parse_xml(xml) == {"Content": "a]]>b<c>&", "CreateTime": "12"}


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"MsgType": "text", "CreateTime": 1, "MsgId": "1"}, "FromUserName"),
        ({"FromUserName": "u", "CreateTime": 1, "MsgId": "1"}, "MsgType"),
        ({"FromUserName": "u", "MsgType": "text", "MsgId": "1"}, "CreateTime"),
        (
            {
                "FromUserName": "u",
                "MsgType": "text",
                "CreateTime": "soon",
                "MsgId": "1",
            },
            "CreateTime",
        ),
        ({"FromUserName": "u", "MsgType": "text", "CreateTime": 1}, "MsgId"),
    ],
)
def test_messages_missing_fields_are_refused(fields: dict, reason: str) -> None:
    with pytest.raises(MalformedRequest, match=reason):
        InboundMessage.from_xml(wc.to_xml(fields))


def test_events_need_no_msg_id_and_dedupe_by_sender_and_time() -> None:
    event = InboundMessage.from_xml(
        wc.to_xml(
            {
                "FromUserName": "u",
                "MsgType": "event",
                "CreateTime": 5,
                "Event": "subscribe",
            }
        )
    )
    assert event.dedup_key == "ev:u:5:subscribe"
    text = InboundMessage.from_xml(
        wc.to_xml(
            {
                "FromUserName": "u",
                "MsgType": "Text",
                "CreateTime": 5,
                "MsgId": "42",
                "Content": " 你好 ",
            }
        )
    )
    assert (text.msg_type, text.content, text.dedup_key) == ("text", " 你好 ", "id:42")
