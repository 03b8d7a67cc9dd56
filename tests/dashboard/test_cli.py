"""``atlasd dashboard`` as a command: its URL line, a taken port, a daemon that is not there."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.daemon import DaemonProcess, clean_env
from tests.support.dashboard import running_dashboard


def _get(port: int, path: str, cookie: str = "") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_a_taken_port_is_a_usage_error() -> None:
    """Exit 2 with a message naming the address when the port cannot be bound."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "atlasd", "dashboard", "--port", str(port)],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr
    assert result.stdout == ""


def test_without_a_daemon_the_dashboard_serves_and_says_the_daemon_is_unreachable(
    demo_daemon: DaemonProcess, tmp_path: Path
) -> None:
    """The page still loads; its API answers 503 ``unreachable`` until the daemon is back."""
    missing = DaemonProcess(
        root=demo_daemon.root,
        socket=Path("/tmp/atlasd-no-such-dir/atlasd.sock"),
        data_dir=tmp_path,
        args=[],
        env={},
    )
    with running_dashboard(missing) as dash:
        status, headers, _ = _get(dash.port, f"/?token={dash.token}")
        assert status == 303
        cookie = headers["set-cookie"].split(";", 1)[0]
        assert _get(dash.port, "/", cookie)[0] == 200
        status, _, body = _get(dash.port, "/api/status", cookie)
    assert status == 503
    assert b'"code":"unreachable"' in body


def test_the_url_is_the_first_line_on_stdout(demo_daemon: DaemonProcess) -> None:
    """The first stdout line is the loopback URL with a long random token, and nothing else."""
    with running_dashboard(demo_daemon) as first, running_dashboard(demo_daemon) as second:
        for dash in (first, second):
            assert dash.url.startswith("http://127.0.0.1:")
            assert len(dash.token) >= 32
        assert first.token != second.token
        assert first.port != second.port
