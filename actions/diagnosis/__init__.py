"""Why is 借呗 hidden? A pure-Python diagnosis engine (no rasa_sdk, no I/O at import).

`facts` defines the account-facts record, `engine` evaluates the rule table in
`rules.yml` against it, `__main__` is the support-staff CLI.
"""
