"""``atlasd serve``: the daemon's own command (:mod:`atlasd.daemon.command`)."""

from __future__ import annotations

from atlasd.daemon.command import add_parser, run

__all__ = ["add_parser", "run"]
