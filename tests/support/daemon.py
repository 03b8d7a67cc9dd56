"""A real ``atlasd serve`` subprocess on a short temp socket, for tests.

Usage::

    from tests.support.daemon import running_daemon

    with running_daemon() as d:          # waits until the socket answers ping
        conn = d.connect()
        assert conn.request("ping")["ok"]
        d.socket, d.data_dir, d.pid      # for clients, subprocess CLIs, signals
    # stopped with SIGTERM; the exit code is checked (0) unless check_exit=False

``start_daemon`` / ``DaemonProcess.stop`` give finer control (restart on the
same data dir, SIGKILL, custom flags or environment). The daemon runs as
``python -m atlasd.daemon`` (the ``serve`` subcommand's own entry, which
imports nothing but the daemon), with every ``ATLASD_*``/Convex/systemd
variable removed from its environment unless given in ``env``.

Resource handling: each daemon gets its own directory under /tmp (short, so
the socket path fits AF_UNIX's 108 bytes); it is removed by ``running_daemon``
unless ``keep`` is set. stderr goes to ``ROOT/daemon.log`` (``d.log()``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DaemonProcess", "RawConnection", "clean_env", "running_daemon", "start_daemon"]

#: Seconds a daemon may take to answer its first ping.
START_TIMEOUT_S = 30.0
#: Seconds a daemon may take to exit after SIGTERM.
STOP_TIMEOUT_S = 30.0

_STRIPPED_PREFIXES = ("ATLASD_", "LISTEN_", "WATCHDOG_")
_STRIPPED = {"CONVEX_URL", "NOTIFY_SOCKET", "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY"}


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without atlasd/systemd settings, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_STRIPPED_PREFIXES) and k not in _STRIPPED
    }
    env.update(extra or {})
    return env


class RawConnection:
    """A blocking NDJSON connection to the daemon, for protocol-level tests."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(os.fspath(path))
        except BaseException:
            self.sock.close()
            raise
        self._file = self.sock.makefile("rb")

    def send(self, message: Mapping[str, Any] | bytes) -> None:
        """Send a request (a dict, encoded as one line) or raw bytes as they are."""
        data = message if isinstance(message, bytes) else json.dumps(message).encode() + b"\n"
        self.sock.sendall(data)

    def recv(self) -> dict[str, Any]:
        """The next response line, decoded; raises EOFError when the daemon closed."""
        line = self._file.readline()
        if not line:
            raise EOFError("daemon closed the connection")
        result: dict[str, Any] = json.loads(line)
        return result

    def request(self, op: str, **params: Any) -> dict[str, Any]:
        """Send ``{"op": op, **params}`` and return its response."""
        self.send({"op": op, **params})
        return self.recv()

    def at_eof(self) -> bool:
        """Whether the daemon closed the connection (after any pending lines)."""
        return self._file.readline() == b""

    def close(self) -> None:
        self._file.close()
        self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class DaemonProcess:
    root: Path
    socket: Path
    data_dir: Path
    args: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    _log_file: Any = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.proc is not None, "daemon not started"
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        return self.root / "daemon.log"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "atlasd.daemon",
            "--socket",
            os.fspath(self.socket),
            "--data-dir",
            os.fspath(self.data_dir),
            *self.args,
        ]

    def start(self, wait: bool = True, **popen: Any) -> DaemonProcess:
        """Start the subprocess; with ``wait``, return once it answers ping."""
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            popen.pop("command", None) or self.command(),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
            **popen,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Poll until a ping succeeds; raises with the daemon's log if it exits first."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"daemon exited with {self.proc.returncode} before ready:\n{self.log()}"
                )
            with (
                contextlib.suppress(OSError, EOFError, ValueError),
                RawConnection(self.socket, timeout=2.0) as conn,
            ):
                if conn.request("ping").get("ok"):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"daemon not ready after {timeout}s:\n{self.log()}")
            time.sleep(0.02)

    def connect(self, timeout: float = 30.0) -> RawConnection:
        return RawConnection(self.socket, timeout=timeout)

    def request(self, op: str, **params: Any) -> dict[str, Any]:
        """One request on a fresh connection."""
        with self.connect() as conn:
            return conn.request(op, **params)

    def send_signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send ``signum`` (default SIGTERM), wait for the exit and return its code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
        return code

    def kill(self) -> int:
        """SIGKILL: no chance to clean up (a crash)."""
        return self.stop(signal.SIGKILL)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def start_daemon(
    root: Path | None = None,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    wait: bool = True,
    socket: Path | None = None,
) -> DaemonProcess:
    """Start a daemon in ``root`` (a new short dir under /tmp by default).

    Passing the ``root`` of a stopped daemon restarts on the same data dir.
    ``socket`` defaults to ``ROOT/atlasd.sock``.
    """
    root = root or Path(tempfile.mkdtemp(prefix="atlasd-", dir="/tmp"))
    daemon = DaemonProcess(
        root=root,
        socket=socket or root / "atlasd.sock",
        data_dir=root / "data",
        args=list(args),
        env=clean_env(env),
    )
    return daemon.start(wait=wait)


@contextlib.contextmanager
def running_daemon(
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    check_exit: bool = True,
    keep: bool = False,
) -> Iterator[DaemonProcess]:
    """A started daemon, stopped with SIGTERM (exit 0 checked) and cleaned up after."""
    daemon = start_daemon(args=args, env=env)
    try:
        yield daemon
    finally:
        assert daemon.proc is not None
        running = daemon.proc.poll() is None
        code = daemon.stop()
        log = daemon.log()
        if not keep:
            shutil.rmtree(daemon.root, ignore_errors=True)
    if check_exit and running:
        assert code == 0, f"daemon exited with {code}:\n{log}"
