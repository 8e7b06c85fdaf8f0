"""Where a message enters: the Rasa input channels credentials.yml names.

- ``rest``: Rasa's REST channel (``/webhooks/rest/webhook``), requests checked;
- ``socketio``: Rasa's socket.io channel for the web chat page, origins checked;
- ``wechat/``: the WeCom and WeChat Official Account channels (signed,
  encrypted platform callbacks; answers through the platforms' APIs).

Each hands every message to the inbound pipeline (bot_server/pipeline/)
before Rasa sees it, and installs our Rasa patches when Rasa builds it
(``from_credentials``; bot_server/rasa_patches/).
"""
