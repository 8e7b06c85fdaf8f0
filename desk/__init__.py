"""The agent desk: people who take over handed-off conversations (docs/agent-desk.md).

No Rasa import here: the page server (web/) serves the desk's console and API,
the store is SQL (the account database), and Rasa is reached over its HTTP API
(desk/relay.py) to put an agent's words into the user's conversation.
"""
