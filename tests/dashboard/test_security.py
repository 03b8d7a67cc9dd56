"""The dashboard's access checks against the real process: token, cookie, Host, CSRF, headers."""

from __future__ import annotations

import http.client

import pytest
from playwright.sync_api import Page

from tests.support.daemon import DaemonProcess
from tests.support.dashboard import DashboardProcess, running_dashboard


class _Http:
    """Raw HTTP/1.1 to the dashboard, with full control of the headers (Host included)."""

    def __init__(self, dashboard: DashboardProcess) -> None:
        self.port = dashboard.port

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            sent = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
            for name, value in sent.items():
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()


@pytest.fixture
def http_(dashboard: DashboardProcess) -> _Http:
    return _Http(dashboard)


def _session_cookie(http_: _Http, dashboard: DashboardProcess) -> str:
    status, headers, _ = http_.request("GET", f"/?token={dashboard.token}")
    assert status == 303
    return headers["set-cookie"].split(";", 1)[0]


@pytest.mark.browser
def test_a_browser_without_the_token_gets_403(open_page: Page, dashboard: DashboardProcess) -> None:
    """A page opened without the printed token is refused, and so is its API."""
    response = open_page.goto(f"{dashboard.base}/")
    assert response is not None
    assert response.status == 403
    assert "token" in open_page.content()
    api = open_page.request.get(f"{dashboard.base}/api/status")
    assert api.status == 403
    wrong = open_page.goto(f"{dashboard.base}/?token=not-the-token")
    assert wrong is not None
    assert wrong.status == 403


@pytest.mark.browser
def test_two_dashboards_on_one_machine_keep_their_own_sessions(
    open_page: Page, dashboard: DashboardProcess, demo_daemon: DaemonProcess
) -> None:
    """Cookies are per host, not per port: signing in to a second dashboard keeps the first."""
    with running_dashboard(demo_daemon) as other:
        for dash in (dashboard, other):
            response = open_page.goto(dash.url)
            assert response is not None
            assert response.status == 200
        for dash in (dashboard, other):
            assert open_page.request.get(f"{dash.base}/api/status").status == 200


def test_the_token_becomes_an_httponly_strict_cookie_and_leaves_the_url(
    http_: _Http, dashboard: DashboardProcess
) -> None:
    """The printed URL answers with a redirect to the same path without the token, and a cookie."""
    status, headers, _ = http_.request("GET", f"/?token={dashboard.token}&x=1")
    assert status == 303
    assert headers["location"] == "/?x=1"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert dashboard.token not in cookie
    status, _, body = http_.request("GET", "/api/status", {"Cookie": cookie.split(";")[0]})
    assert status == 200, body


def test_a_token_redirect_never_leaves_the_dashboard(
    http_: _Http, dashboard: DashboardProcess
) -> None:
    """A path like //other.host/ stays a path on this server (no open redirect)."""
    status, headers, _ = http_.request("GET", f"//evil.example/?token={dashboard.token}")
    assert status == 303
    assert headers["location"] == "/evil.example/"


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost.evil.example:{port}", ""],
)
def test_a_wrong_host_header_is_refused_even_with_the_cookie(
    http_: _Http, dashboard: DashboardProcess, host: str
) -> None:
    """DNS rebinding: only the bound address (and localhost on loopback) with its port answers."""
    cookie = _session_cookie(http_, dashboard)
    status, _, body = http_.request(
        "GET", "/api/status", {"Host": host.format(port=dashboard.port), "Cookie": cookie}
    )
    assert status == 403
    assert b"own address" in body


def test_localhost_names_the_loopback_dashboard(http_: _Http, dashboard: DashboardProcess) -> None:
    """``localhost:PORT`` is the same server as ``127.0.0.1:PORT``."""
    cookie = _session_cookie(http_, dashboard)
    status, _, _ = http_.request(
        "GET", "/api/status", {"Host": f"localhost:{dashboard.port}", "Cookie": cookie}
    )
    assert status == 200


def test_the_requeue_post_needs_the_csrf_token_and_a_same_origin(
    http_: _Http, dashboard: DashboardProcess
) -> None:
    """Without the page's CSRF token, or from another origin, the one write is refused."""
    cookie = _session_cookie(http_, dashboard)
    status, _, page = http_.request("GET", "/", {"Cookie": cookie})
    assert status == 200
    csrf = page.decode().split('name="atlasd-csrf" content="', 1)[1].split('"', 1)[0]
    assert csrf
    assert csrf != "{{csrf}}"
    refused = http_.request("POST", "/api/sync/requeue", {"Cookie": cookie})
    assert refused[0] == 403
    assert b"CSRF" in refused[2]
    wrong = http_.request("POST", "/api/sync/requeue", {"Cookie": cookie, "X-Atlasd-CSRF": "x"})
    assert wrong[0] == 403
    foreign = http_.request(
        "POST",
        "/api/sync/requeue",
        {"Cookie": cookie, "X-Atlasd-CSRF": csrf, "Origin": "http://evil.example"},
    )
    assert foreign[0] == 403
    no_cookie = http_.request("POST", "/api/sync/requeue", {"X-Atlasd-CSRF": csrf})
    assert no_cookie[0] == 403
    allowed = http_.request(
        "POST",
        "/api/sync/requeue",
        {"Cookie": cookie, "X-Atlasd-CSRF": csrf, "Origin": f"http://127.0.0.1:{dashboard.port}"},
    )
    assert allowed[0] == 200, allowed
    assert b"triggered" in allowed[2]


def test_answers_forbid_caching_framing_foreign_scripts_and_cors(
    http_: _Http, dashboard: DashboardProcess
) -> None:
    """Security headers on every answer; no CORS header even when another origin asks."""
    cookie = _session_cookie(http_, dashboard)
    status, headers, _ = http_.request(
        "GET", "/api/status", {"Cookie": cookie, "Origin": "http://evil.example"}
    )
    assert status == 200
    assert headers["cache-control"] == "no-store"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert not any(name.startswith("access-control-") for name in headers)
    denied_status, denied_headers, _ = http_.request("GET", "/api/status")
    assert denied_status == 403
    assert denied_headers["cache-control"] == "no-store"
