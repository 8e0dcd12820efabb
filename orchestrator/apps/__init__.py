"""App profiles shipped with the orchestrator (`backend`: the demo app of this repository)."""
