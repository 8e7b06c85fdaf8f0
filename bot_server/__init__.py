"""The Rasa server's plug-ins (not the action server's), by role.

- ``channels/``: where a message enters. The input channels credentials.yml
  names: REST, socket.io (the web chat page), and ``wechat/`` (WeCom and the
  WeChat Official Account).
- ``pipeline/``: where it is checked. Every channel hands each message to the
  same stages before Rasa sees it: rate limit → gate (cleaning, masking) →
  guard (deadline, failed actions, pause; a user always gets an answer), with
  one renderer of the server's own replies (``pipeline/replies.py``).
- ``rasa_patches/``: our changes to Rasa itself, for one Rasa version: the
  speedups, and the tracker and lock stores endpoints.prod.yml names;
  ``install()`` checks the version when Rasa loads our channels or stores.

Where the bot's answer is decided: Rasa's model and the action server
(actions/). The chat page and its server live in web/.
"""
