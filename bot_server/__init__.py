"""Extensions loaded by the Rasa server (not the action server).

- ``bot_server.channels``: the REST and socket.io channels wrapped by the
  reply guard, so that a user always gets an answer.
- ``bot_server.tracker_store``: the SQL tracker store that survives a database
  restart.
"""
