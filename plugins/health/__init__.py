"""Health: the check registry (registry: every check declared once) and what answers it.

results (CheckResult), connection (what the SSH master answers), probes and dockerd (the remote commands and
their judges), remote (one command per host), hosts (check one host, every host), web (HTTP acceptance),
waiting (until healthy: the deploy's health stage and the rollback), run (the health suite's session of
checks), table (the host × check summary), plugin (the pytest entry).
"""
