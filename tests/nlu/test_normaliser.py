"""The input normaliser: one row a behaviour."""

from __future__ import annotations

import pytest

from nlu.normaliser import normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # full-width -> half-width
        ("ｊｉｅｂｅｉ　ＡＰＰ", "借呗 APP"),
        ("借呗额度１０００元", "借呗额度1000元"),
        # traditional -> simplified, domain spellings
        ("為什麼我的借唄不見了", "为什么我的借呗不见了"),
        ("帳戶被凍結了", "账户被冻结了"),
        ("還款後額度沒恢復", "还款后额度没恢复"),
        # pinyin of domain terms
        ("jiebei不见了", "借呗不见了"),
        ("我的 JieBei 没了", "我的借呗没了"),
        ("jie bei 额度", "借呗额度"),
        ("huabei和jiebei有啥区别", "花呗和借呗有啥区别"),
        ("zhimafen 650", "芝麻分 650"),
        ("wangshangdai", "网商贷"),
        # pinyin inside an English word is left alone
        ("jiebeix", "jiebeix"),
        # misspellings of the products
        ("借贝咋没了", "借呗咋没了"),
        ("花贝逾期影响借呗吗", "花呗逾期影响借呗吗"),
        ("芝麻份多少能开通", "芝麻分多少能开通"),
        ("借 贝 不见了", "借呗不见了"),
        # 借吧 only where it clearly means the product
        ("借吧额度没了", "借呗额度没了"),
        ("我的借吧不见了", "我的借呗不见了"),
        ("找不到借吧", "找不到借呗"),
        ("那就借吧", "那就借吧"),
        ("缺钱就借吧", "缺钱就借吧"),
        # stray spaces and repeated punctuation
        ("  借呗   在哪  ", "借呗在哪"),
        ("支付宝 app 里 借呗 在哪", "支付宝 app 里借呗在哪"),
        ("借呗呢？？？", "借呗呢?"),
        ("搞什么！！！！", "搞什么!"),
        ("怎么回事?!?!", "怎么回事?"),
        ("没了。。。。", "没了。"),
        # invisible and control characters
        ("借\u200b呗\u200d没了", "借呗没了"),
        ("借呗\x00\x07没了", "借呗没了"),
        ("\ud800借呗", "借呗"),
        ("借呗\n没了", "借呗没了"),
        # already clean text is unchanged
        ("我的借呗怎么没了", "我的借呗怎么没了"),
        ("", ""),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_normalise_is_idempotent() -> None:
    for text in ["為什麼我的借唄不見了？？", "jie bei 额度", "借贝　咋没了！！"]:
        once = normalise(text)
        assert normalise(once) == once
