"""Fixtures: one Convex double per session (see tests/support/convex_double.py)."""

from tests.support.convex_double import convex_double, convex_double_session

__all__ = ["convex_double", "convex_double_session"]
