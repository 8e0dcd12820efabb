"""The command bus (reliable-cmd) as this app uses it: compatibility, behaviors, worker."""

DOMAIN = "test"
QUEUE_NAME = f"{DOMAIN}__commands"
