"""The action server package of 借呗助手 (rasa_sdk loads every module in it)."""
