"""Insights and the learning loop: figures over the stores, the review queue, retention.

SQL over Rasa's tracker store (its ``events`` table) and the case store; no
Rasa import. Served to staff by the page server (web/) beside the agent desk.
"""
