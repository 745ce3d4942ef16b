"""The project's own tests: always behind the network fence."""

pytest_plugins = ["tests.netfence"]
