"""The security suite's controls, each a module of one concern (exposure: who answers from where)."""
