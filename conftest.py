"""Root conftest: registers the suite's pytest entries (one plugin.py per package that hooks into pytest).

--inventory (plugins.inventory.plugin), --plan-only / --no-rollback / --run-id / --idempotence /
--ansible-var (plugins.deploy.plugin). The plugins act only where they apply: the deploy lock, the stage
gating and the end of the run (rollback → notification → result) only for a run that collected deploy
stages; the health table only for tests that carry a health cell; the report's redaction everywhere.
"""

pytest_plugins = [
    "plugins.startup.plugin",  # first: the collector paused while the others import and pytest collects
    "plugins.inventory.plugin",
    "plugins.report.plugin",
    "plugins.deploy.plugin",
    "plugins.health.plugin",
]
