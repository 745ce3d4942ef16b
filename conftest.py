"""Root conftest: registers the suite's plugins and their command-line options for every run.

--inventory (plugins.inventory.plugin), --plan-only / --no-rollback / --run-id / --idempotence
(plugins.deploy_session). The plugins act only where they apply: the rollback only in a
failed deploy session that took snapshots
(plugins.deploy_finish); the health table only for tests that carry a health cell.
"""

pytest_plugins = [
    "plugins.inventory.plugin",
    "plugins.reporting",
    "plugins.deploy_session",
    "plugins.stages",
    "plugins.deploy_finish",
    "plugins.health_report",
]
