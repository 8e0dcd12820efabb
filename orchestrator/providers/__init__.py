"""Providers realize a StackSpec: `local` (embedded Postgres + subprocesses) or `docker`."""
