"""Development tools shared by ``tests/`` and ``scripts/``.

What both need to run the real bot and talk to it: the harness that starts the
Rasa and action servers on free ports (``harness``), the scripted
conversations (``scenarios``), real PostgreSQL and Redis servers
(``servers``), the bad-input corpus and its runner (``bad_input``), the
personal-data cases (``privacy_cases``), a fake of the WeCom and Official
Account APIs (``fake_platform``) and requests signed the way they send them
(``signed``), and the project's files as tests read them (``project``,
``tracker``).

Never imported by the bot's runtime code (the servers' packages), and never
copied into the runtime image; ``scripts/`` imports this, never ``tests/``.
tests/test_layout.py checks both.
"""
