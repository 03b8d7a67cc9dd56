"""``atlasd doctor``: checks of a machine's atlasd, each ok, warn or fail with its fix."""

from __future__ import annotations

from atlasd.doctor.checks import Check, Level, run_checks

__all__ = ["Check", "Level", "run_checks"]
