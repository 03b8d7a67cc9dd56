"""The kernel's record of who is at the other end of a Unix socket (SO_PEERCRED).

Both ends use it: the daemon to admit clients, clients to make sure the
socket they are about to send events to is served by the daemon they expect
(the current user's, or the system's), not by whoever created the path first.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import struct
from dataclasses import dataclass

__all__ = ["SYSTEM_USER", "PeerCred", "peer_credentials", "trusted_daemon_uids"]

#: The system service's user (systemd/atlasd.sysusers); it owns the system socket.
SYSTEM_USER = "atlasd"

_UCRED = struct.Struct("3i")


@dataclass(frozen=True, slots=True)
class PeerCred:
    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> PeerCred:
    """The peer's pid, uid and gid as the kernel recorded them (at connect or listen)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return PeerCred(pid, uid, gid)


def trusted_daemon_uids() -> frozenset[int]:
    """Who may serve a socket a client sends to: the current user, root (socket
    activation), and the system service's user when it exists."""
    uids = {os.getuid(), 0}
    with contextlib.suppress(KeyError):
        uids.add(pwd.getpwnam(SYSTEM_USER).pw_uid)
    return frozenset(uids)
