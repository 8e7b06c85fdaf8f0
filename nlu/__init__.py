"""NLU pieces of this project: input normaliser, Rasa components, spaCy build."""
