"""Stage 2 of the pipeline: the input gate, what Rasa may see of a message.

The rules are pure functions (no Rasa import); :func:`apply_gate`, the stage,
applies them to every message of every channel, before NLU, the tracker store
and the logs see it:

- personal data is masked: 18-digit ID-card numbers (checksum verified),
  mainland mobile numbers, bank card numbers (Luhn verified, spaces or dashes
  allowed), e-mail addresses, and codes or passwords the user offers
  ("验证码是 123456"); the user is then told not to send them
  (``utter_secret_warning``, ``utter_pii_warning``);
- invisible characters are dropped first (zero-width and bidi marks, control
  characters but newline and tab) and lone surrogates become U+FFFD, so they
  neither hide a number from the masking nor reach a store that must encode
  the text; a message with nothing left is ``empty`` and gets
  ``utter_empty_message`` without running the bot;
- a message longer than ``MAX_MESSAGE_CHARS`` (default 1000) is cut there,
  after masking (a cut never leaves half a number unmasked), and the user is
  told (``utter_message_truncated``);
- Rasa's ``/intent{...}`` syntax is defused: the leading slashes are dropped,
  so Rasa parses the rest as words, unless the message is exactly one of our
  own button payloads or ``ALLOW_INTENT_SYNTAX=1`` (tests and scripts). A
  slash is anything NFKC turns into "/" (the full-width "／" too), because the
  NLU pipeline normalises with NFKC before Rasa looks for the syntax.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from typing import AbstractSet, Any, Dict, List, Tuple

from bot_server.pipeline.inbound import Inbound, Next
from settings import rasa_server_settings

logger = logging.getLogger(__name__)

EMPTY_RESPONSE = "utter_empty_message"
TRUNCATED_RESPONSE = "utter_message_truncated"
PII_RESPONSE = "utter_pii_warning"
SECRET_RESPONSE = "utter_secret_warning"
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"

# 18 characters, also written 6-8-4 with spaces or dashes.
ID_CARD = re.compile(r"(?<![0-9A-Za-z])\d{6}[ -]?\d{8}[ -]?\d{3}[0-9Xx](?![0-9A-Za-z])")
CARD = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){14,18}(?![0-9A-Za-z])")
MOBILE = re.compile(
    r"(?<![0-9A-Za-z])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d){8}(?![0-9A-Za-z])"
)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
SECRET = re.compile(
    r"(验证码|校验码|动态码|短信码|密码|支付密码|口令)\s*(?:是|为|:|：)?\s*([0-9A-Za-z]{4,20})"
)


# Format characters (Unicode category Cf: zero-width space/joiners, bidi
# overrides, BOM, word joiner, soft hyphen...) and controls other than newline
# and tab carry no meaning for the bot.
KEPT_CONTROLS = {"\n", "\t"}
# Full-width digits, Latin letters and the signs of numbers and addresses
# (＋－．＠) become ASCII, one character for one, so １３８… is masked like
# 138… (NLU reads them as ASCII anyway). Chinese punctuation stays.
FULL_WIDTH = str.maketrans(
    {
        **{chr(0xFF10 + i): chr(0x30 + i) for i in range(10)},
        **{chr(0xFF21 + i): chr(0x41 + i) for i in range(26)},
        **{chr(0xFF41 + i): chr(0x61 + i) for i in range(26)},
        "＋": "+",
        "－": "-",
        "．": ".",
        "＠": "@",
    }
)
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# What people put between the groups of a number.
SEPARATORS = re.compile(r"[ -]")


@dataclass
class GateResult:
    """The text to hand on and what the gate did to it."""

    text: str
    masked: List[str] = field(default_factory=list)
    secret_offered: bool = False
    truncated: bool = False
    defused_command: bool = False
    empty: bool = False


def clean(text: str) -> str:
    """Drop invisible and control characters, make the text storable.

    Lone surrogates become U+FFFD; full-width digits and letters become ASCII.
    """
    text = LONE_SURROGATE.sub("\ufffd", text).translate(FULL_WIDTH)
    return "".join(
        char
        for char in text
        if char in KEPT_CONTROLS or unicodedata.category(char) not in ("Cc", "Cf")
    )


def id_card_valid(number: str) -> bool:
    """The check character of an 18-digit resident ID number (GB 11643)."""
    total = sum(int(d) * w for d, w in zip(number[:17], ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11] == number[17].upper()


def luhn_valid(digits: str) -> bool:
    """The Luhn check of a card number."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _keep(value: str, head: int, tail: int) -> str:
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def mask_personal_data(text: str) -> GateResult:
    """Mask what must never be stored; say which kinds were found."""
    found: List[str] = []

    def secret(match: re.Match[str]) -> str:
        found.append("secret")
        return f"{match.group(1)}{'*' * len(match.group(2))}"

    def id_card(match: re.Match[str]) -> str:
        value = SEPARATORS.sub("", match.group())
        if not id_card_valid(value):
            return match.group()
        found.append("id_card")
        return _keep(value, 3, 4)

    def card(match: re.Match[str]) -> str:
        digits = SEPARATORS.sub("", match.group())
        if not 15 <= len(digits) <= 19 or not luhn_valid(digits):
            return match.group()
        found.append("bank_card")
        return _keep(digits, 4, 4)

    def mobile(match: re.Match[str]) -> str:
        digits = SEPARATORS.sub("", match.group())[-11:]
        found.append("mobile")
        return _keep(digits, 3, 4)

    def email(match: re.Match[str]) -> str:
        local, domain = match.group().split("@", 1)
        found.append("email")
        return f"{local[:1]}***@{domain}"

    text = SECRET.sub(secret, text)
    text = ID_CARD.sub(id_card, text)
    text = CARD.sub(card, text)
    text = MOBILE.sub(mobile, text)
    text = EMAIL.sub(email, text)
    kinds = sorted(set(found) - {"secret"})
    return GateResult(text, masked=kinds, secret_offered="secret" in found)


def is_command(text: str) -> bool:
    """Whether Rasa would read ``text`` as ``/intent{...}`` after NFKC."""
    return unicodedata.normalize("NFKC", text).lstrip().startswith("/")


def drop_leading_slashes(text: str) -> str:
    """The text without its leading slashes (and the spaces between them)."""
    index = 0
    while index < len(text) and (
        text[index].isspace() or unicodedata.normalize("NFKC", text[index]) == "/"
    ):
        index += 1
    return text[index:]


def gate(text: str, button_payloads: AbstractSet[str] = frozenset()) -> GateResult:
    """Clean, defuse commands, mask personal data, truncate."""
    text = clean(text)
    stripped = text.strip()
    if not stripped:
        return GateResult("", empty=True)
    defused = False
    if (
        is_command(stripped)
        and stripped not in button_payloads
        and not rasa_server_settings().allow_intent_syntax
    ):
        text = drop_leading_slashes(stripped)
        defused = True
        if not text:
            return GateResult("", empty=True, defused_command=True)
    result = mask_personal_data(text)
    limit = rasa_server_settings().max_message_chars
    if len(result.text) > limit:
        result.text = result.text[:limit]
        result.truncated = True
    result.defused_command = defused
    return result


def button_payloads(agent: Any) -> frozenset[str]:
    """Our own buttons' ``/intent`` payloads: the gate lets exactly these pass.

    Read once per loaded domain (a new model brings a new domain object), not
    on every message.
    """
    domain = getattr(agent, "domain", None)
    cached = _payload_cache.get(id(domain))
    if cached is not None and cached[0] is domain:
        return cached[1]
    responses = getattr(domain, "responses", {}) or {}
    payloads = frozenset(
        str(button.get("payload"))
        for variations in responses.values()
        for variation in variations
        for button in variation.get("buttons") or []
        if str(button.get("payload", "")).startswith("/")
    )
    _payload_cache.clear()  # one loaded domain at a time
    _payload_cache[id(domain)] = (domain, payloads)
    return payloads


_payload_cache: Dict[int, Tuple[Any, frozenset[str]]] = {}


def gate_notices(result: GateResult) -> list[str]:
    """What the user is told about what the gate did, in this order."""
    notices = []
    if result.truncated:
        notices.append(TRUNCATED_RESPONSE)
    if result.secret_offered:
        notices.append(SECRET_RESPONSE)
    if result.masked:
        notices.append(PII_RESPONSE)
    return notices


async def apply_gate(inbound: Inbound, then: Next) -> None:
    """The stage: hand on the gated text, after telling the user what was done."""
    message = inbound.message
    text = message.text if isinstance(message.text, str) else ""
    result = gate(text, button_payloads(inbound.agent))
    if result.empty:
        await inbound.answer(EMPTY_RESPONSE)
        return
    message.text = result.text
    if result.masked or result.secret_offered or result.truncated:
        logger.info(
            "gate for %s: masked %s, secret %s, truncated %s",
            inbound.sender,
            result.masked,
            result.secret_offered,
            result.truncated,
        )
    for notice in gate_notices(result):
        await inbound.answer(notice)
    await then(inbound)
