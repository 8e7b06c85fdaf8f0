"""Rasa NLU components of this project.

`TextNormaliser` runs first in the pipeline (config.yml) and rewrites each
message's text with `nlu.normaliser.normalise`, so the tokenizer, featurizers,
spaCy and the classifiers all see the same normalised Chinese. It is registered
as a featurizer-type component because Rasa chains those in config order in
both the NLU and the end-to-end (core) featurization paths.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.normaliser import normalise


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
