"""What leaves the suite for people: redaction (every text passes it), Allure output, text tables.

redaction (secret values and the one rule for secret names), allure_output (attachments, steps,
results of their own, environment, categories), tables (aligned text tables), plugin (the pytest entry).
"""
