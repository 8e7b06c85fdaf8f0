"""Extensions loaded by the Rasa server (not the action server).

- ``bot_server.channels``: the REST and socket.io channels wrapped by the
  reply guard, so that a user always gets an answer.
- ``bot_server.tracker_store``: the SQL tracker store that survives a database
  restart.
- ``bot_server.lock_store``: the Redis lock store with atomic ticket changes.
- ``bot_server.speedups``: two measured hot spots of Rasa's server, removed.
- ``bot_server.wecom``, ``bot_server.wechat_mp``: the WeCom and WeChat Official
  Account channels (shared code in ``wechat_*.py``).
- ``bot_server.webpage``: the chat page's static server (its own process).
"""
