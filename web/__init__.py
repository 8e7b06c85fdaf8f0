"""The chat page: its files (static/) and the small server of them (server.py)."""
