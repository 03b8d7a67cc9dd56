"""Where the client finds the daemon's socket and the spool.

The resolution is the daemon's own (:mod:`atlasd.config`): an explicit
argument wins, then ``ATLASD_SOCKET`` / ``ATLASD_DATA_DIR``, then the
built-in defaults, so a client and a daemon started the same way meet. A
daemon configured only through a TOML file needs the same paths passed to
its clients (flags or the environment variables).

One step more than the daemon: a user whose own default socket does not
exist, on a machine where the system service is installed (its runtime
directory ``/run/atlasd`` exists: the socket unit creates it and keeps it),
is a client of the system daemon. The client then uses the system socket
and, with no data dir given, the system data dir, so an offline append is
spooled where the system daemon looks (``/var/lib/atlasd/spool``), or
refused when this user may not write there; never into a spool no daemon
reads.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from atlasd import config

__all__ = [
    "SYSTEM_PATHS",
    "SystemPaths",
    "resolve_data_dir",
    "resolve_socket_path",
    "spool_dir_for",
]


class SystemPaths(msgspec.Struct, frozen=True):
    """Where the system service (``systemd/atlasd.service``) keeps its socket and data."""

    socket: Path
    data_dir: Path

    @property
    def installed(self) -> bool:
        """The system service's runtime directory exists (it may be stopped)."""
        return self.socket.parent.is_dir()


SYSTEM_PATHS = SystemPaths(socket=Path("/run/atlasd/atlasd.sock"), data_dir=Path("/var/lib/atlasd"))


def resolve_socket_path(
    explicit: str | os.PathLike[str] | None = None, *, system: SystemPaths | None = None
) -> Path:
    """The socket to connect to: ``explicit``, else ``$ATLASD_SOCKET``, else the
    default; the system socket instead of a default that does not exist when the
    system service is installed."""
    if (explicit is not None and os.fspath(explicit)) or os.environ.get("ATLASD_SOCKET"):
        return config.resolve_socket_path(explicit)
    system = SYSTEM_PATHS if system is None else system
    default = config.default_socket_path()
    if not default.exists() and system.installed:
        return system.socket
    return default


def resolve_data_dir(
    explicit: str | os.PathLike[str] | None = None,
    *,
    socket_path: Path | None = None,
    system: SystemPaths | None = None,
) -> Path:
    """The data dir whose spool takes offline appends: ``explicit``, else
    ``$ATLASD_DATA_DIR``, else the system data dir for a client of the system
    socket, else the default. ``socket_path`` is the socket in use (resolved
    when not given)."""
    if explicit is not None and os.fspath(explicit):
        return Path(explicit)
    env = os.environ.get("ATLASD_DATA_DIR")
    if env:
        return Path(env)
    system = SYSTEM_PATHS if system is None else system
    socket = resolve_socket_path(system=system) if socket_path is None else socket_path
    if socket == system.socket:
        return system.data_dir
    return config.default_data_dir()


def spool_dir_for(data_dir: Path) -> Path:
    """``DATA_DIR/spool``: the drop directory the daemon watches."""
    return data_dir / "spool"
