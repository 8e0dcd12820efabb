"""The command bus (reliable-cmd) as this app uses it: compatibility, behaviors, worker."""

DOMAIN = "test"
QUEUE_SUFFIX = "__commands"
# PGMQ refuses queue names longer than 47 characters ("queue name is too long"); a domain's
# queue is `<domain>__commands`, so a domain may have at most 37.
PGMQ_MAX_QUEUE_NAME = 47
MAX_DOMAIN_LENGTH = PGMQ_MAX_QUEUE_NAME - len(QUEUE_SUFFIX)


def queue_name(domain: str) -> str:
    """The PGMQ queue that carries `domain`'s commands."""
    return f"{domain}{QUEUE_SUFFIX}"


QUEUE_NAME = queue_name(DOMAIN)
