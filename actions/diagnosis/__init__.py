"""Why is 借呗 hidden? A pure-Python diagnosis engine (no rasa_sdk, no I/O at import).

`facts` defines the account-facts record, `engine` evaluates the rule table in
`rules.yml` against it, `questions` declares the facts the bot asks for and
merges the store's record with the user's answers, `answers` reads free
Chinese answers, `walk` steps through the fixes, `enums` holds the closed
vocabularies, `__main__` is the support-staff CLI.
"""
