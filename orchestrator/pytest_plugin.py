"""pytest plugin: stack fixtures (filled in by the orchestrator work)."""
