"""The worker's handler registry: every type of its domain is handled, from the first delivery."""

from __future__ import annotations

from backend.bus.handlers import DomainRegistry, TestCommandHandler


def test_types_created_after_start_are_handled_at_once():
    handler = TestCommandHandler(pool=None)  # never called here
    registry = DomainRegistry("test", handler)
    assert registry.get_sync("test", "TestCommand") is handler
    assert registry.get_sync("test", "CreatedJustNow") is handler
    assert registry.get_sync_or_raise("test", "CreatedJustNow") is handler


def test_other_domains_are_not_claimed():
    registry = DomainRegistry("test", TestCommandHandler(pool=None))
    assert registry.get_sync("payments", "DebitAccount") is None
