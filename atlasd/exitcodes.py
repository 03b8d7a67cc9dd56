"""Exit codes of every ``atlasd`` command: 0 ok, 1 error reported by the daemon,
2 usage, 3 daemon unreachable."""

from __future__ import annotations

__all__ = ["EXIT_DAEMON_ERROR", "EXIT_OK", "EXIT_UNREACHABLE", "EXIT_USAGE"]

EXIT_OK = 0
EXIT_DAEMON_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
