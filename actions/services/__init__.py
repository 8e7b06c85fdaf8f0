"""External services of the action server, one module each (accounts, cases)."""
