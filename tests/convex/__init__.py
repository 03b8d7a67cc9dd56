"""Tests of the Convex double: the real Convex functions behind a local HTTP server."""
