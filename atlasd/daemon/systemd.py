"""systemd integration without a library: sd_notify, the watchdog, socket activation.

Resource handling: the notify socket is one datagram socket opened on first
use and closed by :meth:`Notifier.close`; inherited listening sockets are
taken over once and their environment variables unset so no child inherits
them.

Error handling: notification failures are ignored (systemd may be gone
during shutdown); a malformed ``LISTEN_FDS`` is treated as "no sockets".
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping

import anyio

__all__ = [
    "START_EXTEND_EVERY_S",
    "STATUS_INTERVAL_S",
    "Notifier",
    "extending_start",
    "inherited_listener",
    "notify_loop",
    "watchdog_interval",
    "watchdog_loop",
]

#: The first inherited file descriptor (sd_listen_fds's SD_LISTEN_FDS_START).
LISTEN_FDS_START = 3

#: At most this long between two looks at the daemon's state for ``STATUS=``.
STATUS_INTERVAL_S = 5.0
#: During a long start-up step, how often more start-up time is asked for (three times
#: this much each time, so one late message does not end the start).
START_EXTEND_EVERY_S = 10.0


class Notifier:
    """Sends ``KEY=value`` lines to ``$NOTIFY_SOCKET`` (no-op when unset)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        # "@name" is the abstract namespace: a leading NUL byte on the wire.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *lines: str) -> bool:
        """Send one datagram; returns whether it was sent."""
        if not self._address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(lines).encode(), self._address)
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), or None."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2 / 1_000_000


@contextlib.asynccontextmanager
async def extending_start(
    notifier: Notifier, status: str, every: float = START_EXTEND_EVERY_S
) -> AsyncIterator[None]:
    """Keep systemd's start timeout (``TimeoutStartSec``) off a long start-up step, such
    as a schema migration rewriting every event: ``EXTEND_TIMEOUT_USEC=`` (three times
    ``every``) and ``STATUS=status`` now and every ``every`` seconds until the block ends.

    Without it a start that outlasts the timeout is killed and restarted, and the
    migration, rolled back each time, never completes.

    Error handling: an exception of the block is raised as it is.
    """
    if not notifier.enabled:
        yield
        return
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(_extend_start, notifier, status, every)
        try:
            yield
        except Exception as exc:  # raised below, not grouped by the task group
            failure = exc
        finally:
            tg.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def _extend_start(notifier: Notifier, status: str, every: float) -> None:
    extension = f"EXTEND_TIMEOUT_USEC={int(every * 3_000_000)}"
    while True:
        notifier.notify(extension, f"STATUS={status}")
        await anyio.sleep(every)


async def watchdog_loop(notifier: Notifier, interval: float) -> None:
    """Ping from the event loop itself, so a stalled loop stops the pings."""
    while True:
        notifier.notify("WATCHDOG=1")
        await anyio.sleep(interval)


async def notify_loop(
    notifier: Notifier,
    watchdog: float | None,
    describe: Callable[[], Awaitable[str]],
    shown: str = "",
) -> None:
    """The watchdog pings (when ``watchdog`` is set) and a current ``STATUS=``.

    Each tick (the watchdog interval, at most :data:`STATUS_INTERVAL_S`) asks
    ``describe`` for the status line and sends it only when it differs from
    the last one sent (``shown`` at first), so ``systemctl status`` shows the
    daemon's state of a few seconds ago.
    """
    interval = STATUS_INTERVAL_S if watchdog is None else min(watchdog, STATUS_INTERVAL_S)
    sent = shown
    while True:
        lines = ["WATCHDOG=1"] if watchdog is not None else []
        status = await describe()
        if status != sent:
            lines.append(f"STATUS={status}")
            sent = status
        if lines:
            notifier.notify(*lines)
        await anyio.sleep(interval)


def inherited_listener(env: MutableMapping[str, str] | None = None) -> socket.socket | None:
    """Take over the listening AF_UNIX stream socket passed by systemd, if any.

    Honours ``LISTEN_PID`` (must be this process) and ``LISTEN_FDS``; the
    variables are unset afterwards. Other inherited descriptors are closed.
    """
    env = os.environ if env is None else env
    pid = env.get("LISTEN_PID", "")
    count = env.get("LISTEN_FDS", "")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        env.pop(name, None)
    if pid != str(os.getpid()) or not count.isdigit():
        return None
    chosen: socket.socket | None = None
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + int(count)):
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            continue
        os.set_inheritable(fd, False)
        is_unix_stream = sock.family == socket.AF_UNIX and sock.type == socket.SOCK_STREAM
        if (
            chosen is None
            and is_unix_stream
            and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        ):
            chosen = sock
        else:
            sock.close()
    return chosen
