"""Project scripts run by make (evaluation, validation, benchmarks)."""
