"""Where the client finds the daemon's socket and the spool (CONTRACT section 1).

The resolution is the daemon's own: an explicit argument wins, then the
``ATLASD_SOCKET`` / ``ATLASD_DATA_DIR`` environment variables, then the
defaults of :mod:`atlasd.config` and :mod:`atlasd.eventlog.datadir`, so a
client and a daemon started the same way always meet.
"""

from __future__ import annotations

import os
from pathlib import Path

from atlasd.eventlog.datadir import default_data_dir

__all__ = ["resolve_data_dir", "resolve_socket_path", "spool_dir_for"]


def resolve_socket_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The socket to connect to: ``explicit``, else ``$ATLASD_SOCKET``, else the default."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("ATLASD_SOCKET")
    if env:
        return Path(env)
    return _default_socket_path()


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data dir whose spool takes offline appends; same order as the socket."""
    if explicit is not None:
        return Path(explicit)
    return default_data_dir()  # reads $ATLASD_DATA_DIR first


def spool_dir_for(data_dir: Path) -> Path:
    """``DATA_DIR/spool``: the drop directory the daemon watches."""
    return data_dir / "spool"


def _default_socket_path() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "atlasd" / "atlasd.sock"
    if os.geteuid() == 0:
        return Path("/run/atlasd/atlasd.sock")
    return Path(f"/tmp/atlasd-{os.geteuid()}") / "atlasd.sock"
