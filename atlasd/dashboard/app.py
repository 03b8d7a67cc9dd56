"""The dashboard's routes (starlette): one HTML page, its static assets, a JSON API, live notices.

The page (``static/``) renders everything itself from the JSON API; the API
answers bounded pages only (see :mod:`atlasd.dashboard.daemon_link`):

| route | answer |
|---|---|
| ``GET /`` | the page, with this process's CSRF token in a ``<meta>`` |
| ``GET /api/status`` | the daemon's ``status`` and the view names |
| ``GET /api/query/{view}`` | one page of a view (parameters below) |
| ``GET /api/build/{build_id}`` | the build's row, tasks and executions (bounded) |
| ``GET /api/executions/stats`` | executions by agent and by model in ``[since, until)`` (bounded) |
| ``POST /api/sync/requeue`` | re-queue the sync quarantine (the only write) |
| ``GET /api/live?watch=[...]`` | server-sent events: the watched queries changed |
| ``GET /metrics`` | the daemon's metrics (Prometheus text), as ``atlasd metrics`` prints them |

Its parameters: ``limit``, ``order``, ``order_by``, ``after``, ``since``,
``until``; a column filter is ``f.COL=TEXT`` (a string) or ``j.COL=JSON`` (any value,
e.g. ``j.tags=["a","b"]``).

Access checks are not here: :class:`atlasd.dashboard.security.AccessGuard`
wraps the whole application.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from atlasd.client.metrics import CONTENT_TYPE, exposition
from atlasd.errors import AtlasdError, BadRequest, DaemonUnreachable, InvalidValue

from .aggregate import group_executions
from .daemon_link import MAX_PAGE, DaemonLink, PageQuery
from .live import LiveStream

__all__ = ["create_app"]

#: The most rows a build page or the execution charts gather (in pages).
MAX_DETAIL_ROWS = 5000
MAX_STATS_ROWS = 20_000

_encoder = msgspec.json.Encoder()


def _json(value: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(value), status_code=status, media_type="application/json")


def _error(exc: AtlasdError) -> Response:
    if isinstance(exc, DaemonUnreachable):
        status = 503
    elif isinstance(exc, BadRequest | InvalidValue):
        status = 400
    else:
        status = 502
    return _json({"error": {"code": exc.code, "message": exc.message}}, status)


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise BadRequest(f"{name} must be an integer") from exc


def _page_query(request: Request, view: str) -> PageQuery:
    params = request.query_params
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise BadRequest("order must be asc or desc")
    filter_: dict[str, Any] = {}
    for key, value in params.multi_items():
        if key.startswith("f.") and len(key) > 2:
            filter_[key[2:]] = value
        elif key.startswith("j.") and len(key) > 2:
            try:
                filter_[key[2:]] = json.loads(value)
            except ValueError as exc:
                raise BadRequest(f"{key} must be JSON") from exc
    return PageQuery(
        view=view,
        filter=filter_ or None,
        limit=_int_param(request, "limit") or 50,
        order="asc" if order == "asc" else "desc",
        order_by=params.get("order_by") or None,
        after=params.get("after") or None,
        since=_int_param(request, "since"),
        until=_int_param(request, "until"),
    )


def create_app(link: DaemonLink, live: LiveStream, *, csrf: str) -> Starlette:
    """The application, without its access checks (see the module docstring)."""
    static = resources.files("atlasd.dashboard") / "static"
    page_html = (static / "index.html").read_text(encoding="utf-8").replace("{{csrf}}", csrf)

    async def index(request: Request) -> Response:
        return HTMLResponse(page_html)

    async def status(request: Request) -> Response:
        try:
            report = await link.status()
            views = await link.view_names(report)
        except AtlasdError as exc:
            return _error(exc)
        return _json(
            {
                "status": report,
                "views": views,
                "cursor_paging": link.cursor_paging,
                "max_page": MAX_PAGE,
            }
        )

    async def metrics(request: Request) -> Response:
        try:
            report = await link.status()
        except AtlasdError as exc:
            return _error(exc)
        return Response(exposition(report), media_type=CONTENT_TYPE)

    async def query(request: Request) -> Response:
        try:
            page = await link.page(_page_query(request, request.path_params["view"]))
        except AtlasdError as exc:
            return _error(exc)
        return _json(page)

    async def build(request: Request) -> Response:
        build_id = request.path_params["build_id"]
        by_build = {"build_id": build_id}
        try:
            head = await link.page(PageQuery(view="builds", filter=by_build, limit=1))
            tasks, tasks_cut = await link.collect(
                PageQuery(view="tasks", filter=by_build, order="asc"), MAX_DETAIL_ROWS
            )
            runs, runs_cut = await link.collect(
                PageQuery(view="executions", filter=by_build, order="asc"), MAX_DETAIL_ROWS
            )
        except AtlasdError as exc:
            return _error(exc)
        return _json(
            {
                "build": head.rows[0] if head.rows else None,
                "tasks": tasks,
                "tasks_truncated": tasks_cut,
                "executions": runs,
                "executions_truncated": runs_cut,
            }
        )

    async def execution_stats(request: Request) -> Response:
        try:
            since = _int_param(request, "since")
            until = _int_param(request, "until")
            rows, cut = await link.collect(
                PageQuery(
                    view="executions",
                    order="desc",
                    order_by="recorded_at" if since is not None or until is not None else None,
                    since=since,
                    until=until,
                ),
                MAX_STATS_ROWS,
            )
        except AtlasdError as exc:
            return _error(exc)
        return _json(
            {
                "by_agent": group_executions(rows, "agent"),
                "by_model": group_executions(rows, "model"),
                "executions": len(rows),
                "truncated": cut,
                "paging": "cursor" if link.cursor_paging else "limit",
            }
        )

    async def requeue(request: Request) -> Response:
        try:
            result = await link.requeue_quarantine()
        except AtlasdError as exc:
            return _error(exc)
        return _json(result)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/status", status),
            Route("/api/query/{view}", query),
            Route("/api/build/{build_id}", build),
            Route("/api/executions/stats", execution_stats),
            Route("/api/sync/requeue", requeue, methods=["POST"]),
            Route("/api/live", live),
            Route("/metrics", metrics),
            Mount("/static", StaticFiles(directory=str(static)), name="static"),
        ]
    )
