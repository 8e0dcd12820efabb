pytest_plugins = ["tests.fixtures.database", "tests.fixtures.backend"]
