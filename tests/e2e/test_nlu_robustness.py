"""The trained model reads the ways users write one question alike (make e2e).

Traditional characters, full-width letters, pinyin, homophone slips, masked
numbers and punctuation floods: each variant must get the label of its plain
form. Parsed in process by the model `make train` built.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict

import pytest

from devtools.harness import MODEL
from scripts.eval_nlu import top_label

pytestmark = pytest.mark.e2e

CASES = [
    ("借唄額度怎麼降了", "jiebei_quota"),
    ("ｊｉｅｂｅｉ　不见了", "jiebei_entry_missing"),
    ("jiebei额度咋又少了", "jiebei_quota"),
    ("Jie Bei 怎么还款", "faq/jiebei_repayment"),
    ("借贝怎么还款", "faq/jiebei_repayment"),
    ("借被被平台关闭了", "jiebei_closed"),
    ("额度***为啥借不出来", "jiebei_cannot_borrow"),
    ("借了***什么时候到账", "faq/jiebei_disbursement"),
    ("借呗！！！！能提前还吗？？？", "faq/jiebei_early_repayment"),
    ("蚂蚁借呗利息多少。。。", "faq/jiebei_interest"),
    ("芝麻份怎么提高", "faq/credit_score"),
    ("網商貸怎麼換回借唄", "faq/jiebei_wangshangdai"),
    ("花贝和借贝有啥区别", "faq/jiebei_vs_huabei"),
    ("借 呗 逾 期 了", "faq/jiebei_overdue"),
]


@pytest.fixture(scope="module")
def parse() -> Any:
    from rasa.core.agent import Agent

    if not MODEL.exists():
        pytest.fail(f"no model at {MODEL}: run `make train` first")
    agent = Agent.load(str(MODEL))

    def run(text: str) -> Dict[str, Any]:
        return asyncio.run(agent.parse_message(text))

    return run


@pytest.mark.parametrize(("text", "label"), CASES)
def test_written_forms_of_one_question_get_one_label(
    parse: Any, text: str, label: str
) -> None:
    assert top_label(parse(text))[0] == label
