"""What the skills share: account lookups, blocking calls, facts, forms, outcomes.

A skill module (one that defines actions: clarify, diagnose, fixes, handoff)
imports from here and never from another skill (tests/actions/test_skills.py).
Nothing here defines an action.
"""
