"""The input gate (bot_server/gate.py): masking, truncation, defused commands."""

from __future__ import annotations

import pytest

from bot_server.gate import gate, id_card_valid, luhn_valid, mask_personal_data

# Fictional numbers built to pass their checks (ID: GB 11643 check digit; cards: Luhn).
ID_OK = "11010519491231002X"
CARD_OK = "6222020200112233441"  # 19 digits
MOBILE = "13812345678"


def make_luhn(prefix: str) -> str:
    for last in "0123456789":
        if luhn_valid(prefix + last):
            return prefix + last
    raise AssertionError


def test_checks() -> None:
    assert id_card_valid(ID_OK)
    assert not id_card_valid(ID_OK[:-1] + "1")
    assert luhn_valid(make_luhn("622202020011223"))
    assert not luhn_valid("6222020200112234")


@pytest.mark.parametrize(
    ("text", "expected", "kinds"),
    [
        (f"我的身份证是{ID_OK}", "我的身份证是110***********002X", ["id_card"]),
        (f"手机 {MOBILE} 收不到", "手机 138****5678 收不到", ["mobile"]),
        ("手机 +86 138-1234-5678", "手机 138****5678", ["mobile"]),
        ("邮箱 zhang.san@example.com", "邮箱 z***@example.com", ["email"]),
        ("借了10000块", "借了10000块", []),
        ("订单号 123456789012345678", "订单号 123456789012345678", []),  # no checksum
    ],
)
def test_personal_data_is_masked(text: str, expected: str, kinds: list) -> None:
    result = mask_personal_data(text)
    assert result.text == expected
    assert result.masked == kinds


def test_a_luhn_card_number_with_spaces_is_masked() -> None:
    card = make_luhn("622202020011223")
    spaced = " ".join(card[i : i + 4] for i in range(0, len(card), 4))
    result = mask_personal_data(f"卡号 {spaced} 绑不上")
    assert card not in result.text.replace(" ", "")
    assert result.text == f"卡号 {card[:4]}{'*' * (len(card) - 8)}{card[-4:]} 绑不上"
    assert result.masked == ["bank_card"]


@pytest.mark.parametrize(
    "text", ["验证码是 482913", "支付密码：abc12345", "短信码482913"]
)
def test_offered_codes_and_passwords_are_hidden(text: str) -> None:
    result = mask_personal_data(text)
    assert result.secret_offered
    assert not any(ch.isdigit() for ch in result.text.split("码")[-1])


def test_long_messages_are_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_MESSAGE_CHARS", "20")
    result = gate("借" * 50)
    assert result.truncated and result.text == "借" * 20
    assert not gate("借呗没了").truncated


@pytest.mark.parametrize("text", ["/restart", '/inform{"sesame_score": 900}', " /stop"])
def test_intent_syntax_is_defused(text: str) -> None:
    result = gate(text)
    assert result.defused_command
    assert not result.text.strip().startswith("/")


def test_our_own_button_payloads_and_the_test_switch_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert gate("/affirm", {"/affirm"}).text == "/affirm"
    assert gate('/affirm{"x": 1}', {"/affirm"}).defused_command
    monkeypatch.setenv("ALLOW_INTENT_SYNTAX", "1")
    assert gate("/restart").text == "/restart"
