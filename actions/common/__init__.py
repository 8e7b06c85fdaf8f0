"""What the skills share: lookups, blocking calls, facts, forms, outcomes, turns.

A skill module (one that defines actions: clarify, diagnosis_form, handoff)
imports from here and never from another skill (tests/actions/test_skills.py).
Nothing here defines an action. The diagnosis form's turn is in parts that
define none either (diagnose, fixes, resume): only diagnosis_form uses them.
"""
