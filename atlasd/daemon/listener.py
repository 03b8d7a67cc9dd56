"""The listening socket: created safely, or taken over from systemd.

Creation: the socket's directory is created (0700, or 0750 with a socket
group) when missing; an existing one must be a real directory owned by the
daemon's user (or root) that others cannot write. The socket is bound under
a temporary name with a tight umask, given its mode (0600, or 0660 and the
group) and then renamed into place, so it is never reachable with looser
permissions. An existing file at
the path is replaced only when it is a socket nobody answers on (stale).

Resource handling: :class:`BoundSocket` owns the socket; ``remove()`` unlinks
the path only if it still is the socket this process created.

Error handling: raises :class:`ListenerError` with a message for the operator
(path in use by a live daemon, not a socket, permissions).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BoundSocket", "ListenerError", "adopt", "bind_unix"]

#: Pending connections the kernel queues before accept() (somaxconn caps it).
BACKLOG = 1024


class ListenerError(Exception):
    """The socket cannot be created; the message says why."""


@dataclass
class BoundSocket:
    sock: socket.socket
    path: Path | None
    #: (st_dev, st_ino) of the socket file we created, to avoid unlinking a successor's.
    identity: tuple[int, int] | None
    inherited: bool

    def remove(self) -> None:
        """Unlink the socket file if it is still ours (never an inherited one)."""
        if self.inherited or self.path is None or self.identity is None:
            return
        try:
            st = os.lstat(self.path)
        except OSError:
            return
        if (st.st_dev, st.st_ino) == self.identity:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def adopt(sock: socket.socket) -> BoundSocket:
    """Wrap a listening socket passed by systemd (socket activation)."""
    sock.setblocking(False)
    name = sock.getsockname()
    path = Path(name) if isinstance(name, str) and name else None
    return BoundSocket(sock=sock, path=path, identity=None, inherited=True)


def bind_unix(path: Path, gid: int | None = None) -> BoundSocket:
    """Create, bind and listen on ``path`` with mode 0600 (0660 and ``gid`` if given)."""
    if len(os.fsencode(path)) >= 108:
        raise ListenerError(f"socket path too long for AF_UNIX (max 107 bytes): {path}")
    _prepare_directory(path.parent, gid)
    _check_existing(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        old_umask = os.umask(0o177)
        try:
            sock.bind(os.fsencode(tmp))
        finally:
            os.umask(old_umask)
        if gid is not None:
            os.chown(tmp, -1, gid)
            os.chmod(tmp, 0o660)
        else:
            os.chmod(tmp, 0o600)
        sock.listen(BACKLOG)
        sock.setblocking(False)
        os.rename(tmp, path)
        st = os.lstat(path)
    except OSError as exc:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ListenerError(f"cannot create socket {path}: {exc.strerror or exc}") from exc
    return BoundSocket(sock=sock, path=path, identity=(st.st_dev, st.st_ino), inherited=False)


def _prepare_directory(directory: Path, gid: int | None) -> None:
    mode = 0o750 if gid is not None else 0o700
    try:
        directory.mkdir(mode=mode, parents=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ListenerError(f"cannot create socket directory {directory}: {exc.strerror}") from exc
    else:
        # mkdir's mode is filtered by the umask; set it exactly.
        os.chmod(directory, mode)
        if gid is not None:
            os.chown(directory, -1, gid)
        return
    st = os.lstat(directory)
    if stat.S_ISLNK(st.st_mode):
        raise ListenerError(
            f"socket directory {directory} is a symbolic link; "
            "use a real directory owned by the daemon's user"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise ListenerError(f"socket directory {directory} is not a directory")
    # Whoever owns the directory can swap the socket for their own and read every event
    # sent to it (a default directory in /tmp created first by someone else): refuse, as
    # ssh-agent and tmux do.
    if st.st_uid not in (os.geteuid(), 0):
        raise ListenerError(
            f"socket directory {directory} is owned by uid {st.st_uid}, not by this user "
            f"(uid {os.geteuid()}) or root; another user may have created it to intercept "
            "events. Remove it, or choose another path (--socket, ATLASD_SOCKET, XDG_RUNTIME_DIR)"
        )
    # Anyone who may write the directory may swap the socket, unless it is sticky (/tmp).
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise ListenerError(
            f"socket directory {directory} is writable by others; "
            "use a private directory (mode 0700)"
        )


def _check_existing(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ListenerError(f"{path} exists and is not a socket; not replacing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    probe.settimeout(1.0)
    try:
        probe.connect(os.fsencode(path))
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return  # stale: nobody listens; the rename replaces it
        raise ListenerError(f"cannot check existing socket {path}: {exc.strerror}") from exc
    else:
        raise ListenerError(f"another daemon is serving on {path}; not replacing it")
    finally:
        probe.close()
