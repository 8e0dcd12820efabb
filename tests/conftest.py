import os

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.backend",
    "tests.fixtures.docker_images",
]

# Our own tests run once each, also in CI (where `retries` defaults to 2), and so do the inner
# pytest sessions they start: their outcomes and evidence folders are what they assert.
os.environ.setdefault("STACK_RETRIES", "0")
# ... and record no run history in the checkout's .ci-stack/history (a test that checks the
# history names its own folder).
os.environ.setdefault("STACK_HISTORY", "off")
