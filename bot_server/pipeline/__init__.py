"""The inbound pipeline: where every user message is checked before Rasa sees it.

Every channel (bot_server/channels/) hands Rasa's ``on_new_message`` to
:func:`bot_server.pipeline.compose.inbound_handler`, which runs each message
through these stages, in this order (compose.STAGES):

1. ``ratelimit``: a sender over the per-sender limit gets ``utter_rate_limited``;
2. ``gate``: the text is cleaned, personal data masked, commands defused; an
   empty message gets ``utter_empty_message``, and the user is told what was
   masked or cut;
3. ``guard``: Rasa handles the message under a deadline; a failed custom
   action, an exception, silence or a missed deadline gets an answer anyway.

A stage answers through ``Inbound.answer``, which renders domain responses
with the one renderer of the server's own replies (``replies``).
"""
