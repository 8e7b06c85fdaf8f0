"""The Rasa wrapper of the normaliser, the jieba dictionary and the spaCy build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Tuple

import pytest
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from devtools.project import ROOT
from nlu.build_spacy import build, load_patterns
from nlu.components import PERSON_REQUEST_KEY, PersonRequestDetector, TextNormaliser

DICTIONARY = ROOT / "nlu" / "jieba_dict"


def test_component_normalises_live_messages() -> None:
    messages = [Message(data={TEXT: "借唄不見了？？"}), Message(data={TEXT: ""})]
    TextNormaliser().process(messages)
    assert messages[0].get(TEXT) == "借呗不见了?"
    assert messages[1].get(TEXT) == ""


def test_component_normalises_training_data() -> None:
    data = TrainingData([Message(data={TEXT: "jiebei额度", "intent": "jiebei_quota"})])
    TextNormaliser().process_training_data(data)
    assert data.training_examples[0].get(TEXT) == "借呗额度"
    assert data.training_examples[0].get("intent") == "jiebei_quota"


def test_dictionary_folder_holds_only_dictionaries() -> None:
    # JiebaTokenizer loads every file in the folder as a dictionary.
    for path in DICTIONARY.iterdir():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            word, freq, *_ = line.split()
            assert word and freq.isdigit(), f"{path.name}:{number}"


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("我的借呗没了", "借呗"),
        ("花呗和借呗", "花呗"),
        ("芝麻分太低", "芝麻分"),
        ("网商贷额度", "网商贷"),
        ("实名认证没通过", "实名认证"),
    ],
)
def test_jieba_keeps_domain_words_whole(text: str, word: str) -> None:
    from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer

    JiebaTokenizer._load_custom_dictionary(str(DICTIONARY))
    import jieba

    assert word in jieba.lcut(text)


def test_patterns_file_is_valid_and_labelled() -> None:
    patterns = load_patterns()
    labels = {p["label"] for p in patterns}
    assert labels == {"product", "account_state", "bank"}
    texts = [p["pattern"] for p in patterns]
    assert len(texts) == len(set(texts)), "duplicate pattern"


def test_bad_patterns_line_is_refused_with_its_number(tmp_path: Path) -> None:
    bad = tmp_path / "patterns.jsonl"
    bad.write_text(json.dumps({"label": "product", "pattern": "借呗"}) + "\n{oops\n")
    with pytest.raises(ValueError, match=r"patterns.jsonl:2"):
        load_patterns(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的支付宝账户被冻结了", [("被冻结", "account_state")]),
        ("借呗没了,绑的是建行的卡", [("借呗", "product"), ("建行", "bank")]),
        ("蚂蚁借呗和花呗", [("蚂蚁借呗", "product"), ("花呗", "product")]),
        ("账号没激活", [("没激活", "account_state")]),
        ("今天天气不错", []),
    ],
)
def test_spacy_pipeline_finds_domain_entities(
    tmp_path: Path, text: str, expected: list[tuple[str, str]]
) -> None:
    import spacy

    nlp = spacy.load(build(tmp_path / "spacy_zh"))
    assert [(e.text, e.label_) for e in nlp(text).ents] == expected


def _classified(text: str, ranking: List[Tuple[str, float]]) -> Message:
    """A message as the classifier and the FallbackClassifier leave it."""
    entries = [{"name": name, "confidence": score} for name, score in ranking]
    return Message(data={TEXT: text, INTENT: entries[0], INTENT_RANKING_KEY: entries})


def _detect(message: Message) -> Message:
    PersonRequestDetector(PersonRequestDetector.get_default_config()).process([message])
    return message


def test_a_request_for_a_person_wins_over_the_complaint() -> None:
    message = _detect(
        _classified(
            "借呗额度降了找人工", [("jiebei_quota", 0.95), ("request_human", 0.04)]
        )
    )
    assert message.get(INTENT) == {"name": "request_human", "confidence": 1.0}
    assert [e["name"] for e in message.get(INTENT_RANKING_KEY)] == [
        "request_human",
        "jiebei_quota",
    ]
    assert message.get(PERSON_REQUEST_KEY) == {
        "phrase": "找人工",
        "declined": False,
        "replaced_intent": "jiebei_quota",
    }
    assert PERSON_REQUEST_KEY in message.as_dict(only_output_properties=True)


def test_a_request_replaces_the_did_you_mean() -> None:
    message = _detect(
        _classified(
            "借呗咋没了快给我接真人",
            [("nlu_fallback", 0.82), ("request_human", 0.6), ("jiebei_closed", 0.3)],
        )
    )
    assert message.get(INTENT)["name"] == "request_human"
    names = [e["name"] for e in message.get(INTENT_RANKING_KEY)]
    assert names == ["request_human", "jiebei_closed"]


def test_a_declined_person_read_as_a_request_is_a_no() -> None:
    message = _detect(
        _classified("不用转人工", [("request_human", 0.99), ("deny", 0.01)])
    )
    assert message.get(INTENT) == {"name": "deny", "confidence": 1.0}
    assert message.get(PERSON_REQUEST_KEY)["declined"] is True


def test_a_declined_person_leaves_another_intent_alone() -> None:
    message = _detect(
        _classified("借呗不见了,不用转人工", [("jiebei_entry_missing", 0.9)])
    )
    assert message.get(INTENT)["name"] == "jiebei_entry_missing"
    assert message.get(PERSON_REQUEST_KEY) is None


def test_other_words_about_people_change_nothing() -> None:
    message = _detect(_classified("你是真人吗", [("bot_challenge", 0.99)]))
    assert message.get(INTENT)["name"] == "bot_challenge"
    assert message.get(PERSON_REQUEST_KEY) is None
