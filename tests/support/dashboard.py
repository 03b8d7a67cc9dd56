"""A real ``atlasd dashboard`` subprocess, and headless Chromium, for tests, screenshots and bench.

Usage::

    with running_daemon() as d, running_dashboard(d) as dash:
        dash.url            # the printed URL, token included
        dash.base           # http://127.0.0.1:PORT (no token)

Chromium is Debian's ``/usr/bin/chromium`` (``make test`` installs it when
missing), launched by Playwright with :data:`CHROMIUM_ARGS`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .daemon import DaemonProcess, clean_env

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "DashboardProcess",
    "chromium_launch_args",
    "running_dashboard",
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Seconds the dashboard may take to print its URL.
START_TIMEOUT_S = 20.0


def chromium_launch_args() -> dict[str, Any]:
    """Keyword arguments for ``playwright.chromium.launch``."""
    return {"executable_path": CHROMIUM, "args": list(CHROMIUM_ARGS), "headless": True}


@dataclass
class DashboardProcess:
    proc: subprocess.Popen[str]
    url: str
    log_path: Path

    @property
    def base(self) -> str:
        return self.url.split("/?", 1)[0]

    @property
    def token(self) -> str:
        return self.url.rsplit("token=", 1)[1]

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def start_dashboard(daemon: DaemonProcess, *args: str) -> DashboardProcess:
    """Start ``atlasd dashboard`` on ``daemon``'s socket and wait for its URL line."""
    log_path = daemon.root / f"dashboard-{len(list(daemon.root.glob('dashboard-*.log')))}.log"
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "atlasd",
                "dashboard",
                "--socket",
                os.fspath(daemon.socket),
                *args,
            ],
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    assert proc.stdout is not None
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(START_TIMEOUT_S)
    if not first or not first[0].startswith("http://"):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"dashboard printed no URL: {first!r}\n{log_path.read_text()}")
    return DashboardProcess(proc=proc, url=first[0].strip(), log_path=log_path)


@contextlib.contextmanager
def running_dashboard(daemon: DaemonProcess, *args: str) -> Iterator[DashboardProcess]:
    """A started dashboard, stopped with SIGTERM after (its exit code checked: 0)."""
    dash = start_dashboard(daemon, *args)
    try:
        yield dash
    finally:
        code = dash.stop()
        if dash.proc.stdout is not None:
            dash.proc.stdout.close()
    assert code == 0, f"dashboard exited with {code}:\n{dash.log()}"
