"""``atlasd dashboard``: a web page over the daemon's socket (optional extra ``atlasd[dashboard]``).

A separate process, a client of the daemon like any other: it reads bounded
pages of views, follows the log for live updates, and serves one page to a
browser on a loopback address behind a token, a cookie and a ``Host`` check.
"""

from __future__ import annotations

from .daemon_link import MAX_PAGE, DaemonLink, Page, PageQuery
from .server import DashboardConfig, serve

__all__ = ["MAX_PAGE", "DaemonLink", "DashboardConfig", "Page", "PageQuery", "serve"]
