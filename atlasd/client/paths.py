"""Where the client finds the daemon's socket and the spool (CONTRACT section 1).

The resolution is the daemon's own (:mod:`atlasd.config`): an explicit
argument wins, then ``ATLASD_SOCKET`` / ``ATLASD_DATA_DIR``, then the
built-in defaults, so a client and a daemon started the same way meet. A
daemon configured only through a TOML file needs the same paths passed to
its clients (flags or the environment variables).
"""

from __future__ import annotations

import os
from pathlib import Path

from atlasd import config

__all__ = ["resolve_data_dir", "resolve_socket_path", "spool_dir_for"]


def resolve_socket_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The socket to connect to: ``explicit``, else ``$ATLASD_SOCKET``, else the default."""
    return config.resolve_socket_path(explicit)


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data dir whose spool takes offline appends; same order as the socket."""
    if explicit is not None and os.fspath(explicit):
        return Path(explicit)
    env = os.environ.get("ATLASD_DATA_DIR")
    if env:
        return Path(env)
    return config.default_data_dir()


def spool_dir_for(data_dir: Path) -> Path:
    """``DATA_DIR/spool``: the drop directory the daemon watches."""
    return data_dir / "spool"
