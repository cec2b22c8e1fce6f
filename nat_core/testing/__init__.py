"""Test scaffolding that other projects' tests may use too: a tiny random-weight bundle."""

from nat_core.testing.tiny_bundle import write_tiny_bundle

__all__ = ["write_tiny_bundle"]
