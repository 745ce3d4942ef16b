"""Root conftest: makes the project importable; suites and tests register their plugins."""
