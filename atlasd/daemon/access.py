"""Who may talk to the daemon: peer credentials (SO_PEERCRED) against the config.

Allowed: the daemon's own uid, root, every uid in ``allowed_uids``, and any
peer whose primary or supplementary groups meet ``allowed_gids`` or the
socket group. Supplementary groups come from ``/proc/PID/status`` (the
kernel's view at connect time is not available through SO_PEERCRED) with
``/etc/group`` membership as a fallback.
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import struct
from dataclasses import dataclass

from atlasd.config import Config

__all__ = ["AccessPolicy", "PeerCred", "peer_credentials", "resolve_group"]

_UCRED = struct.Struct("3i")


@dataclass(frozen=True, slots=True)
class PeerCred:
    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> PeerCred:
    """The connecting process's pid, uid and gid as the kernel recorded them."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return PeerCred(pid, uid, gid)


def resolve_group(group: str | int) -> int:
    """A group name or gid as a gid; raises ValueError when unknown."""
    if isinstance(group, int):
        return group
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError(f"unknown group {group!r}") from None


class AccessPolicy:
    """Decides whether a peer may use the socket."""

    def __init__(self, config: Config, *, proc: str = "/proc") -> None:
        #: Where process status files are read (the kernel's /proc).
        self.proc = proc
        self.uids = frozenset({os.getuid(), 0, *config.allowed_uids})
        gids = set(config.allowed_gids)
        if config.socket_group is not None:
            gids.add(resolve_group(config.socket_group))
        self.gids = frozenset(gids)

    def allows(self, peer: PeerCred) -> bool:
        if peer.uid in self.uids:
            return True
        if not self.gids:
            return False
        if peer.gid in self.gids:
            return True
        return bool(self.gids & _supplementary_groups(peer, self.proc))


def _supplementary_groups(peer: PeerCred, proc: str) -> set[int]:
    try:
        with open(f"{proc}/{peer.pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Groups:"):
                    return {int(g) for g in line.split()[1:] if g.isdigit()}
    except OSError:
        pass
    # The process is gone or /proc is hidden: fall back to the group database.
    try:
        name = pwd.getpwuid(peer.uid).pw_name
    except KeyError:
        return set()
    return {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
