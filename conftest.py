"""Root conftest: registers the suite's plugins and their command-line options for every run.

--inventory (plugins.inventory.plugin), --plan-only / --no-rollback / --run-id / --idempotence
(plugins.deploy_session). The plugins act only where they apply: the rollback only in a
deploy session that took snapshots; the health table only for tests that carry a health cell.
"""

pytest_plugins = [
    "plugins.inventory.plugin",
    "plugins.reporting",
    "plugins.deploy_session",
    "plugins.stages",
    "plugins.rollback",
    "plugins.health_report",
]
