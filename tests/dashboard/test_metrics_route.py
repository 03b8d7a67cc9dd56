"""``/metrics`` on the dashboard: Prometheus text for programs holding the token, nothing else."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from pathlib import Path

import pytest

from atlasd.dashboard.security import TokenFileError, read_token_file
from tests.support.daemon import DaemonProcess, clean_env
from tests.support.dashboard import DashboardProcess, running_dashboard

TOKEN = "metrics-scrape-token-0123456789"


def _get(
    port: int, path: str, headers: dict[str, str], method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers={"Host": f"127.0.0.1:{port}", **headers})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "dashboard-token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o640)
    return path


def test_a_bearer_token_from_the_token_file_reads_the_daemons_metrics(
    demo_daemon: DaemonProcess, token_file: Path
) -> None:
    """With ``--token-file``, ``Authorization: Bearer`` gets the same exposition as the CLI."""
    with running_dashboard(demo_daemon, "--token-file", str(token_file)) as dash:
        assert dash.token == TOKEN
        status, headers, body = _get(dash.port, "/metrics", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, body
        assert headers["content-type"].startswith("text/plain; version=0.0.4")
        assert headers["cache-control"] == "no-store"
        text = body.decode()
        events = next(line for line in text.splitlines() if line.startswith("atlasd_events "))
        cli = subprocess.run(
            [sys.executable, "-m", "atlasd", "metrics", "--socket", os.fspath(demo_daemon.socket)],
            env=clean_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert events in cli.splitlines()
        assert "# TYPE atlasd_appends_total counter" in text


def test_metrics_without_the_token_or_with_a_wrong_one_are_refused(
    dashboard: DashboardProcess,
) -> None:
    """No credentials, a wrong bearer token or another scheme: 403 and no metric in the body."""
    for headers in (
        {},
        {"Authorization": "Bearer not-the-token-at-all-000"},
        {"Authorization": f"Basic {dashboard.token}"},
        {"Authorization": "Bearer"},
    ):
        status, _, body = _get(dashboard.port, "/metrics", headers)
        assert status == 403, headers
        assert b"atlasd_" not in body


def test_a_bearer_token_admits_reads_but_never_the_write(dashboard: DashboardProcess) -> None:
    """The requeue POST with the right bearer token is still refused: writes need the page."""
    bearer = {"Authorization": f"Bearer {dashboard.token}"}
    status, _, _ = _get(dashboard.port, "/api/status", bearer)
    assert status == 200
    refused, _, body = _get(dashboard.port, "/api/sync/requeue", bearer, method="POST")
    assert refused == 403
    assert b"reads only" in body


def test_a_bearer_token_still_needs_the_dashboards_own_host(dashboard: DashboardProcess) -> None:
    """DNS rebinding is refused before the token is looked at."""
    status, _, _ = _get(
        dashboard.port,
        "/metrics",
        {"Authorization": f"Bearer {dashboard.token}", "Host": "evil.example"},
    )
    assert status == 403


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [
        (TOKEN, 0o644, "open to others"),
        (TOKEN, 0o602, "open to others"),
        ("short", 0o600, "shorter than"),
        ("", 0o600, "shorter than"),
        ("has space inside the token 123", 0o600, "may hold only"),
        ("x" * 5000, 0o600, "over 4096 bytes"),
    ],
)
def test_a_token_file_that_cannot_serve_is_refused(
    tmp_path: Path, content: str, mode: int, message: str
) -> None:
    """Loose modes, short or odd tokens and huge files are refused with the reason."""
    path = tmp_path / "token"
    path.write_text(content)
    path.chmod(mode)
    with pytest.raises(TokenFileError, match=message):
        read_token_file(path)


def test_a_token_file_that_is_a_fifo_or_missing_is_refused(tmp_path: Path) -> None:
    """A FIFO (which would block the reader) and a missing file are refused, not waited on."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(TokenFileError, match="not a regular file"):
        read_token_file(fifo)
    with pytest.raises(TokenFileError, match="cannot open"):
        read_token_file(tmp_path / "missing")


def test_the_dashboard_refuses_to_start_on_a_loose_token_file(
    demo_daemon: DaemonProcess, token_file: Path
) -> None:
    """A token file others can read stops the start (exit 2) with the fix in the message."""
    token_file.chmod(0o644)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "atlasd",
            "dashboard",
            "--socket",
            os.fspath(demo_daemon.socket),
            "--token-file",
            os.fspath(token_file),
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "chmod o-rwx" in done.stderr
    assert done.stdout == ""


def test_a_repeated_authorization_header_is_refused(dashboard: DashboardProcess) -> None:
    """Two Authorization headers, the right token in either: 403 (neither is picked)."""
    right, wrong = f"Bearer {dashboard.token}", "Bearer not-the-token-at-all-000"
    for first, second in ((right, wrong), (wrong, right), (right, right)):
        conn = http.client.HTTPConnection("127.0.0.1", dashboard.port, timeout=10)
        try:
            conn.putrequest("GET", "/metrics", skip_host=True)
            conn.putheader("Host", f"127.0.0.1:{dashboard.port}")
            conn.putheader("Authorization", first)
            conn.putheader("Authorization", second)
            conn.endheaders()
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        assert response.status == 403, (first, second)
        assert b"atlasd_" not in body
        assert response.getheader("x-frame-options") == "DENY"


def test_a_bearer_token_admits_get_and_head_only_and_every_answer_is_guarded(
    dashboard: DashboardProcess,
) -> None:
    """GET and HEAD of /metrics with the token answer 200 with every security header (HEAD
    without a body); OPTIONS, PUT, DELETE, PATCH and TRACE are 403 "reads only"."""
    bearer = {"Authorization": f"Bearer {dashboard.token}"}
    for method in ("GET", "HEAD"):
        status, headers, body = _get(dashboard.port, "/metrics", bearer, method=method)
        assert status == 200, method
        assert (body == b"") == (method == "HEAD")
        for name in ("cache-control", "content-security-policy", "x-frame-options"):
            assert name in headers, (method, name)
    for method in ("OPTIONS", "PUT", "DELETE", "PATCH", "TRACE"):
        status, headers, body = _get(dashboard.port, "/metrics", bearer, method=method)
        assert status == 403, method
        assert b"reads only" in body
        assert headers["x-frame-options"] == "DENY"


def test_a_bearer_token_with_odd_bytes_is_refused_cleanly(dashboard: DashboardProcess) -> None:
    """Bytes past ASCII, the token with more or less, are 403 (never a server error); the
    scheme's case and spaces around the token do not matter."""
    token = dashboard.token
    for offered, status in (
        ("Bearer " + token[:-1] + "\xe9", 403),
        ("Bearer " + token + "x", 403),
        ("Bearer " + token[:-1], 403),
        ("Bearer \xff\xfe" + token, 403),
        ("bearer  " + token + "  ", 200),
    ):
        conn = http.client.HTTPConnection("127.0.0.1", dashboard.port, timeout=10)
        try:
            conn.putrequest("GET", "/metrics", skip_host=True)
            conn.putheader("Host", f"127.0.0.1:{dashboard.port}")
            conn.putheader("Authorization", offered.encode("latin-1"))
            conn.endheaders()
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        assert response.status == status, offered
