"""Personal data a user might type, shared by the privacy tests and the report.

Each case is one message with one value written the way people write it
(plain, grouped with spaces or dashes, full-width, split by an invisible
character, +86...). A value has leaked when its canonical form (digits, or the
lower-case address) is found in a text after the same normalisation: JSON
escapes decoded, NFKC, invisible characters, spaces and dashes dropped,
lower case. So a stored "６２２２ ０２０２…" or "6222-0202-…" still counts.
All values are fictional and pass their checks (ID: GB 11643; cards: Luhn).
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List

ID_CARD = "11010519491231002X"
MOBILE = "13812345678"
EMAIL = "zhang.san@example.com"
CODE = "482913"
PASSWORD_CODE = "739204"


def luhn_completed(prefix: str) -> str:
    """``prefix`` plus the digit that makes it pass the Luhn check."""
    from bot_server.pipeline.gate import luhn_valid

    for last in "0123456789":
        if luhn_valid(prefix + last):
            return prefix + last
    raise AssertionError("no Luhn digit")


CARD = luhn_completed("622202020011223")
CARD_19 = luhn_completed("621700123456789012")


def full_width(text: str) -> str:
    """``text`` with its ASCII letters, digits and signs in their full-width forms."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def grouped(digits: str, size: int, sep: str) -> str:
    """``digits`` in groups of ``size`` joined by ``sep``."""
    return sep.join(digits[i : i + size] for i in range(0, len(digits), size))


@dataclass(frozen=True)
class PiiCase:
    """One message carrying one personal value."""

    kind: str
    written: str  # how the value is written, for the report
    message: str
    canonical: str  # what must not be found anywhere


CASES: List[PiiCase] = [
    PiiCase("ID card", "plain", f"我的借呗不见了，身份证{ID_CARD}", ID_CARD),
    PiiCase(
        "ID card",
        "6-8-4 with spaces, small x",
        f"身份证号 {ID_CARD[:6]} {ID_CARD[6:14]} {ID_CARD[14:].lower()} 帮我查查",
        ID_CARD,
    ),
    PiiCase(
        "ID card",
        "split by a zero-width space",
        f"证件号{ID_CARD[:9]}\u200b{ID_CARD[9:]}",
        ID_CARD,
    ),
    PiiCase("bank card", "plain, 16 digits", f"我绑的卡是{CARD}", CARD),
    PiiCase("bank card", "groups of 4", f"银行卡 {grouped(CARD, 4, ' ')} 绑不上", CARD),
    PiiCase("bank card", "19 digits with dashes", f"卡号{grouped(CARD_19, 4, '-')}", CARD_19),
    PiiCase("mobile", "plain", f"手机{MOBILE}收不到短信", MOBILE),
    PiiCase("mobile", "+86 with dashes", f"电话 +86 {MOBILE[:3]}-{MOBILE[3:7]}-{MOBILE[7:]}", MOBILE),
    PiiCase("mobile", "full-width digits", f"打我电话{full_width(MOBILE)}", MOBILE),
    PiiCase("e-mail", "plain", f"邮箱 {EMAIL} 可以联系我", EMAIL),
    PiiCase("e-mail", "upper case", f"发到{EMAIL.upper()}吧", EMAIL),
    PiiCase("e-mail", "full-width", f"邮箱{full_width(EMAIL)}", EMAIL),
    PiiCase("SMS code", "验证码是…", f"刚才收到的验证码是{CODE}", CODE),
    PiiCase("password", "支付密码：…", f"我的支付密码：{PASSWORD_CODE}，你帮我看看", PASSWORD_CODE),
]  # fmt: skip

INVISIBLE = re.compile(r"[\s\-\u200b-\u200f\u2060\ufeff]")


def normalised(text: str) -> str:
    """A text as the leak check compares it (see the module docstring)."""
    return INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).lower()


def decoded(rows: Iterable[str]) -> str:
    """Tracker store rows (JSON, non-ASCII escaped) as readable text."""
    out = []
    for row in rows:
        try:
            out.append(json.dumps(json.loads(row), ensure_ascii=False))
        except ValueError:
            out.append(row)
    return "\n".join(out)


def leaked(canonical: str, text: str) -> bool:
    """Whether ``canonical`` appears in ``text`` in any of its written forms."""
    return normalised(canonical) in normalised(text)


def messages() -> List[str]:
    """The case messages, in order."""
    return [case.message for case in CASES]


def raw_values() -> List[str]:
    """The canonical values, each once."""
    return list(dict.fromkeys(case.canonical for case in CASES))


def stored_places(env: Dict[str, str], cases: List[Dict[str, Any]]) -> Dict[str, str]:
    """What the embedded profile kept, as text.

    The SQLite tracker store, the servers' logs (beside it) and the handoff
    ``cases`` read by the caller.
    """
    tracker_db = env["TRACKER_DB_PATH"]
    with sqlite3.connect(tracker_db) as db:
        stored = decoded(str(row[0]) for row in db.execute("SELECT data FROM events"))
    logs = Path(tracker_db).parent.glob("*.log")
    return {
        "tracker store": stored,
        "server logs": "\n".join(p.read_text(errors="replace") for p in logs),
        "handoff case": json.dumps(cases, ensure_ascii=False, default=str),
    }
