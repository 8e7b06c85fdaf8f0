"""Personal data a user might type, shared by the privacy tests of both profiles."""

from __future__ import annotations

from typing import List

# Fictional values that pass their checks (ID: GB 11643 check digit; card: Luhn).
ID_CARD = "11010519491231002X"
CARD = "6222020200112233"
MOBILE = "13812345678"
EMAIL = "zhang.san@example.com"
CODE = "482913"


def card_number() -> str:
    from bot_server.gate import luhn_valid

    for last in "0123456789":
        if luhn_valid(CARD[:-1] + last):
            return CARD[:-1] + last
    raise AssertionError("no Luhn digit")


def raw_values() -> List[str]:
    return [ID_CARD, card_number(), MOBILE, EMAIL, CODE]


def messages() -> List[str]:
    return [
        f"我的借呗不见了，身份证{ID_CARD}，手机{MOBILE}",
        f"银行卡 {card_number()} 邮箱 {EMAIL}",
        f"刚才收到的验证码是{CODE}",
    ]
