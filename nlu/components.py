"""Rasa NLU components of this project: normaliser, classifier, person requests.

`TextNormaliser` runs first in the pipeline (config.yml) and rewrites each
message's text with `nlu.normaliser.normalise`, so the tokenizer, featurizers,
spaCy and the classifiers all see the same normalised Chinese. It is registered
as a featurizer-type component because Rasa chains those in config order in
both the NLU and the end-to-end (core) featurization paths.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any, Dict, List, Optional, Tuple, Type

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers import LABEL_RANKING_LENGTH
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import (
    RESPONSE_SELECTOR_PREDICTION_KEY,
    RESPONSE_SELECTOR_PROPERTY_NAME,
    RESPONSE_SELECTOR_RANKING_KEY,
    RESPONSE_SELECTOR_RESPONSES_KEY,
    RESPONSE_SELECTOR_RETRIEVAL_INTENTS,
    RESPONSE_SELECTOR_UTTER_ACTION_KEY,
    TOKENS_NAMES,
)
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME, UTTER_PREFIX
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    INTENT_RESPONSE_KEY,
    PREDICTED_CONFIDENCE_KEY,
    RESPONSE_IDENTIFIER_DELIMITER,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.linear import LinearIntentModel, LinearSettings, compile_cues
from nlu.normaliser import normalise
from nlu.person_request import read_person_request

# What the detector adds to the parse data (kept in the tracker's user event):
# the phrase that asked for a person and the intent it replaced.
PERSON_REQUEST_KEY = "person_request"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False
)
class TextNormaliser(GraphComponent):
    """Normalises full-width, traditional, pinyin and misspelt Chinese input."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """No options: the normalisation tables live in `nlu.normaliser`."""
        return {}

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TextNormaliser:
        """Creates the component (it keeps no state)."""
        return cls()

    @staticmethod
    def _normalise_message(message: Message) -> None:
        text = message.get(TEXT)
        if not isinstance(text, str) or not text:
            return
        normalised = normalise(text)
        if normalised != text:
            message.set(TEXT, normalised)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Normalises every training example the same way as live messages."""
        for example in training_data.training_examples:
            self._normalise_message(example)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Normalises incoming messages in place."""
        for message in messages:
            self._normalise_message(message)
        return messages


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class LinearIntentClassifier(GraphComponent, IntentClassifier):
    """Intents and FAQ answers from one calibrated linear model (`nlu.linear`).

    It replaces DIET and the ResponseSelector: it learns the *full* labels
    (``jiebei_quota``, ``faq/jiebei_repayment``) and writes its prediction in
    the same shape as Rasa's classifiers, so rules, forms, the FallbackClassifier
    and ``utter_faq`` work unchanged: ``intent`` and ``intent_ranking`` (a FAQ
    sub-intent counts as ``faq`` with its own probability), and for ``faq``
    the ``response_selector`` entry that ``utter_faq`` reads.
    """

    @classmethod
    def required_components(cls) -> List[Type]:
        """Needs the tokens of a tokenizer (jieba)."""
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """The model's settings (see `nlu.linear.LinearSettings`)."""
        return {**asdict(LinearSettings()), "ranking_length": LABEL_RANKING_LENGTH}

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[LinearIntentModel] = None,
        responses: Optional[Dict[str, List[Dict[str, Any]]]] = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._model = model
        self._responses = responses or {}

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LinearIntentClassifier:
        """Creates an untrained classifier."""
        return cls(config, model_storage, resource)

    def _settings(self) -> LinearSettings:
        names = {f.name for f in fields(LinearSettings)}
        return LinearSettings(**{k: v for k, v in self._config.items() if k in names})

    def train(self, training_data: TrainingData) -> Resource:
        """Learns the full labels of every intent example; saves the model."""
        examples = training_data.intent_examples
        patterns: Dict[str, List[str]] = {}
        for regex in training_data.regex_features:
            patterns.setdefault(regex["name"], []).append(regex["pattern"])
        model = LinearIntentModel(self._settings(), compile_cues(patterns))
        model.fit(
            [m.get(TEXT) for m in examples],
            [_words(m) for m in examples],
            [_full_label(m) for m in examples],
        )
        self._model = model
        self._responses = {
            key: value
            for key, value in training_data.responses.items()
            if key.startswith(UTTER_PREFIX)
        }
        with self._model_storage.write_to(self._resource) as folder:
            model.save(folder)
            (folder / "responses.json").write_text(
                json.dumps(self._responses, ensure_ascii=False), encoding="utf-8"
            )
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LinearIntentClassifier:
        """Loads the saved model (JSON and NumPy files, no pickle)."""
        with model_storage.read_from(resource) as folder:
            model = LinearIntentModel.load(folder)
            responses = json.loads(
                (folder / "responses.json").read_text(encoding="utf-8")
            )
        return cls(config, model_storage, resource, model, responses)

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets intent, ranking and (for FAQ labels) the selected answer."""
        for message in messages:
            text = message.get(TEXT)
            if self._model is None or not isinstance(text, str) or not text:
                continue
            self._annotate(message, self._model.rank(text, _words(message)))
        return messages

    def _annotate(self, message: Message, ranked: List[Tuple[str, float]]) -> None:
        limit = int(self._config.get("ranking_length") or len(ranked))
        intents: Dict[str, float] = {}
        for label, confidence in ranked:
            intent = label.split(RESPONSE_IDENTIFIER_DELIMITER, 1)[0]
            intents.setdefault(intent, confidence)
        ranking = [
            {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence}
            for name, confidence in intents.items()
        ][:limit]
        message.set(INTENT, ranking[0], add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        self._select_response(message, ranked, limit)

    def _select_response(
        self, message: Message, ranked: List[Tuple[str, float]], limit: int
    ) -> None:
        by_retrieval_intent: Dict[str, List[Tuple[str, float]]] = {}
        for label, confidence in ranked:
            if RESPONSE_IDENTIFIER_DELIMITER in label:
                intent = label.split(RESPONSE_IDENTIFIER_DELIMITER, 1)[0]
                by_retrieval_intent.setdefault(intent, []).append((label, confidence))
        if not by_retrieval_intent:
            return
        selector: Dict[str, Any] = {
            RESPONSE_SELECTOR_RETRIEVAL_INTENTS: sorted(by_retrieval_intent)
        }
        for intent, labels in by_retrieval_intent.items():
            # Within a retrieval intent, as Rasa's ResponseSelector reports it:
            # the sub-intents' probabilities given that intent.
            total = sum(confidence for _, confidence in labels) or 1.0
            top, top_confidence = labels[0]
            utter = f"{UTTER_PREFIX}{top}"
            selector[intent] = {
                RESPONSE_SELECTOR_PREDICTION_KEY: {
                    RESPONSE_SELECTOR_RESPONSES_KEY: self._responses.get(utter, []),
                    PREDICTED_CONFIDENCE_KEY: top_confidence / total,
                    INTENT_RESPONSE_KEY: top,
                    RESPONSE_SELECTOR_UTTER_ACTION_KEY: utter,
                },
                RESPONSE_SELECTOR_RANKING_KEY: [
                    {
                        PREDICTED_CONFIDENCE_KEY: confidence / total,
                        INTENT_RESPONSE_KEY: label,
                    }
                    for label, confidence in labels[:limit]
                ],
            }
        message.set(RESPONSE_SELECTOR_PROPERTY_NAME, selector, add_to_output=True)


def _words(message: Message) -> List[str]:
    tokens = message.get(TOKENS_NAMES[TEXT]) or []
    return [token.text for token in tokens]


def _full_label(message: Message) -> str:
    return str(message.get(INTENT_RESPONSE_KEY) or message.get(INTENT))


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class PersonRequestDetector(GraphComponent):
    """Asking for a person is honoured, whatever else the message says.

    Runs last (after the FallbackClassifier, so no "did you mean" replaces
    it). When the phrase tables of `nlu.person_request` find:

    - a request for a person ("借呗不见了，我要转人工"), the intent becomes
      ``request_human``;
    - a person declined ("不用转人工", "别转人工") that the model took for a
      request or could not place, the intent becomes ``deny`` (the user says
      no to a person: outside the diagnosis the bot asks what else it can
      do, inside it the form reads the words as a no);

    with confidence 1, the classifier's ranking kept below it. ``person_request``
    in the parse data says which phrase decided and which intent it replaced.
    Other uses of the words ("你是真人吗", "人工智能") change nothing.
    """

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """The intents of a request for a person and of a declined one."""
        return {"intent": "request_human", "declined_intent": "deny"}

    def __init__(self, config: Dict[str, Any]) -> None:
        self._intent = str(config["intent"])
        self._declined_intent = str(config["declined_intent"])

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> PersonRequestDetector:
        """Creates the component (the phrase tables are read on first use)."""
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets the intent of each message that asks for or declines a person."""
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str) or not text:
                continue
            found = read_person_request(text)
            if found is None:
                continue
            predicted = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
            if not found.declined:
                self._set_intent(message, self._intent, found.phrase)
            elif predicted in (self._intent, DEFAULT_NLU_FALLBACK_INTENT_NAME):
                self._set_intent(message, self._declined_intent, found.phrase)
        return messages

    def _set_intent(self, message: Message, intent: str, phrase: str) -> None:
        before = message.get(INTENT) or {}
        ranking = [
            entry
            for entry in message.get(INTENT_RANKING_KEY) or []
            if entry.get(INTENT_NAME_KEY)
            not in (intent, DEFAULT_NLU_FALLBACK_INTENT_NAME)
        ]
        decided = {INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: 1.0}
        message.set(INTENT, decided, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [dict(decided), *ranking], add_to_output=True)
        message.set(
            PERSON_REQUEST_KEY,
            {
                "phrase": phrase,
                "declined": intent == self._declined_intent,
                "replaced_intent": before.get(INTENT_NAME_KEY),
            },
            add_to_output=True,
        )
