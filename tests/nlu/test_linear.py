"""The intent model (nlu/linear.py) and its Rasa wrapper, on small tables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest

from nlu.linear import (
    LinearIntentModel,
    LinearSettings,
    compile_cues,
    features,
    pinyin_syllables,
)

# Six small labels, enough for a 3-fold calibration (each has 6+ examples).
TABLE: List[Tuple[str, str]] = [
    *[("jiebei_quota", t) for t in (
        "借呗额度降了", "额度怎么涨", "提额", "额度没了", "为啥额度这么低",
        "还完款额度没恢复", "额度被调低了",
    )],
    *[("faq/jiebei_repayment", t) for t in (
        "借呗怎么还款", "还款日是哪天", "会自动扣款吗", "用银行卡还借呗",
        "还款失败了", "怎么还钱", "在哪还",
    )],
    *[("jiebei_closed", t) for t in (
        "借呗被关闭了", "借呗怎么又给我关了", "借呗被冻结", "借呗停用了",
        "借呗被取消了", "借呗暂停服务", "平台把借呗关了",
    )],
    *[("faq/jiebei_self_close", t) for t in (
        "我想关闭借呗", "借呗怎么注销", "不想用借呗了", "借呗能关掉吗",
        "怎么把借呗停掉", "取消借呗", "我要注销借呗",
    )],
    *[("greet", t) for t in ("你好", "您好", "在吗", "哈喽", "有人吗", "早上好")],
    *[("out_of_scope", t) for t in (
        "今天天气", "充话费", "买电影票", "余额宝收益", "借呗有红包吗", "讲个笑话",
    )],
]  # fmt: skip
CUES = {"cue_quota": ["额度|提额"], "cue_self_close": ["注销|关掉|我想关"]}


def _words(text: str) -> List[str]:
    return list(text)  # characters stand in for jieba words in these tests


@pytest.fixture(scope="module")
def model() -> LinearIntentModel:
    trained = LinearIntentModel(LinearSettings(calibration_folds=3), compile_cues(CUES))
    texts = [t for _, t in TABLE]
    return trained.fit(texts, [_words(t) for t in texts], [label for label, _ in TABLE])


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("额度咋又降了", "jiebei_quota"),
        ("借呗哪天还款", "faq/jiebei_repayment"),
        ("借呗又给关了", "jiebei_closed"),
        ("我想把借呗注销掉", "faq/jiebei_self_close"),
        ("你好呀", "greet"),
    ],
)
def test_unseen_phrasings_get_their_label(
    model: LinearIntentModel, text: str, label: str
) -> None:
    assert model.rank(text, _words(text))[0][0] == label


def test_ranking_is_a_probability_distribution_best_first(
    model: LinearIntentModel,
) -> None:
    ranked = model.rank("借呗额度", _words("借呗额度"))
    confidences = [c for _, c in ranked]
    assert sorted(confidences, reverse=True) == confidences
    assert sum(confidences) == pytest.approx(1.0)
    assert {label for label, _ in ranked} == {label for label, _ in TABLE}


def test_temperature_is_fitted_from_held_out_folds(model: LinearIntentModel) -> None:
    assert model.temperature != 1.0
    assert 0.05 <= model.temperature <= 20.0
    unfitted = LinearIntentModel(LinearSettings(calibration_folds=1))
    texts = [t for _, t in TABLE]
    unfitted.fit(texts, [_words(t) for t in texts], [label for label, _ in TABLE])
    assert unfitted.temperature == 1.0


def test_an_unknown_message_is_not_confident(model: LinearIntentModel) -> None:
    # Nothing of it was seen in training: the fallback should get it.
    top = model.rank("zzzz", _words("zzzz"))[0][1]
    assert top < 0.5


def test_saved_model_predicts_the_same_without_pickle(
    model: LinearIntentModel, tmp_path: Path
) -> None:
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "weights.npz"]
    loaded = LinearIntentModel.load(tmp_path)
    texts = ["借呗额度降了咋办", "怎么注销", "你好"]
    words = [_words(t) for t in texts]
    np.testing.assert_allclose(
        loaded.predict_proba(texts, words), model.predict_proba(texts, words), rtol=1e-6
    )
    assert loaded.labels == model.labels and loaded.temperature == model.temperature


def test_features_mask_numbers_and_read_homophones_alike() -> None:
    settings = LinearSettings()
    cues = compile_cues(CUES)
    masked = features("额度***元", ["额度", "***", "元"], cues, settings)
    digits = features("额度5000元", ["额度", "5000", "元"], cues, settings)
    assert masked == digits
    # 额渡 is a homophone slip for 额度: the pinyin view still matches.
    assert "p2:e_du" in features("额渡降了", ["额渡", "降", "了"], cues, settings)
    assert pinyin_syllables("借呗a1") == pinyin_syllables("借贝") == ["jie", "bei"]


def test_cue_features_name_the_matching_tables() -> None:
    bag = features(
        "我想关掉借呗", list("我想关掉借呗"), compile_cues(CUES), LinearSettings()
    )
    assert "cue:cue_self_close" in bag and "cue:cue_quota" not in bag


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(re.error):
        compile_cues({"cue_broken": ["(unclosed"]})
    with pytest.raises(ValueError, match="two labels"):
        LinearIntentModel(LinearSettings()).fit(["a", "b"], [["a"], ["b"]], ["x", "x"])
    with pytest.raises(RuntimeError, match="not trained"):
        LinearIntentModel(LinearSettings()).predict_proba(["a"], [["a"]])


def test_rasa_component_writes_intent_ranking_and_faq_answer(tmp_path: Path) -> None:
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from nlu.components import LinearIntentClassifier

    examples = []
    for label, text in TABLE:
        intent, _, key = label.partition("/")
        data = {"text": " ".join(text), "intent": intent}
        if key:
            data["intent_response_key"] = label
        examples.append(Message(data=data))
    responses = {
        "utter_faq/jiebei_repayment": [{"text": "还款说明"}],
        "utter_faq/jiebei_self_close": [{"text": "关闭说明"}],
    }
    training = TrainingData(examples, responses=responses)
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    tokenizer.process_training_data(training)

    storage = LocalModelStorage(tmp_path)
    resource = Resource("linear")
    context = ExecutionContext(node_name="linear", graph_schema=None)
    config = {**LinearIntentClassifier.get_default_config(), "calibration_folds": 3}
    trained = LinearIntentClassifier.create(config, storage, resource, context)
    trained.train(training)
    loaded = LinearIntentClassifier.load(config, storage, resource, context)

    message = Message(data={"text": " ".join("借呗哪天还款")})
    tokenizer.process([message])
    loaded.process([message])
    intent = message.get("intent")
    ranking = message.get("intent_ranking")
    assert intent["name"] == "faq" and ranking[0] == intent
    assert len({r["name"] for r in ranking}) == len(ranking)  # one entry an intent
    selected = message.get("response_selector")
    assert selected["all_retrieval_intents"] == ["faq"]
    answer = selected["faq"]["response"]
    assert answer["intent_response_key"] == "faq/jiebei_repayment"
    assert answer["utter_action"] == "utter_faq/jiebei_repayment"
    assert answer["responses"] == [{"text": "还款说明"}]
    within = [r["confidence"] for r in selected["faq"]["ranking"]]
    assert sum(within) == pytest.approx(1.0)

    plain = Message(data={"text": " ".join("借呗额度降了")})
    tokenizer.process([plain])
    loaded.process([plain])
    assert plain.get("intent")["name"] == "jiebei_quota"
    assert "faq" in plain.get("response_selector")  # the FAQ ranking is still there
