"""The dashboard's side of the daemon socket: status, bounded pages of views, re-queue.

Every read is one bounded page (at most :data:`MAX_PAGE` rows): the dashboard
never loads a whole view. Pages follow the protocol's cursor paging: a
``query`` may carry ``after`` (the ``next`` of the previous answer),
``order_by``, ``since`` and ``until``, and answers ``next`` (null on the last
page). ``after`` is only ever sent back as the daemon gave it.

A daemon that does not know those parameters refuses them as ``bad_request``;
the pager then remembers it, asks again without them and answers one bounded
page with no cursor (``Page.paging == "limit"``), sorting and time-filtering
that page itself so the page still means what was asked of it. A daemon that
pages but cannot sort by the asked column (it sorts by key and time columns)
is asked in its own order, and each page is sorted here
(``Page.sorted_here``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, cast

import msgspec

from atlasd import wire
from atlasd.client import AsyncClient, StatusReport, SyncNowResult
from atlasd.client.calls import answer_as
from atlasd.errors import BadRequest

__all__ = ["MAX_PAGE", "DaemonLink", "Page", "PageQuery", "sort_rows"]

#: The most rows the dashboard asks for in one page (one page is one answer line).
MAX_PAGE = 1000

Order = Literal["asc", "desc"]
_CURSOR_PARAMS = ("after", "order_by", "since", "until")


class _PagedQuery(
    msgspec.Struct,
    tag_field="op",
    tag="query",
    kw_only=True,
    omit_defaults=True,
):
    """A ``query`` request with the paging parameters (``None`` ones are left out)."""

    id: wire.RequestId = None
    view: str
    filter: dict[str, Any] | None = None
    limit: int | None = None
    order: Order | None = None
    after: str | None = None
    order_by: str | None = None
    since: int | None = None
    until: int | None = None


class PageQuery(msgspec.Struct, frozen=True, kw_only=True):
    """What one page of a view is asked for."""

    view: str
    filter: dict[str, Any] | None = None
    limit: int = 50
    order: Order = "desc"
    order_by: str | None = None
    after: str | None = None
    since: int | None = None
    until: int | None = None


class Page(msgspec.Struct, frozen=True, kw_only=True):
    """One page of rows.

    ``next``: the cursor of the following page, ``None`` on the last one.
    ``paging``: ``"cursor"`` when the daemon pages with cursors, ``"limit"``
    when it answered one bounded page only (``more`` then says whether the
    page was full, so more rows may exist beyond it).
    """

    view: str
    rows: list[dict[str, Any]]
    next: str | None
    paging: Literal["cursor", "limit"]
    more: bool
    #: The rows were sorted by ``order_by`` here, within this page only.
    sorted_here: bool = False


class DaemonLink:
    """The daemon calls the dashboard makes, over one pipelined client connection."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        #: None until known; False once the daemon refused the paging parameters.
        self.cursor_paging: bool | None = None

    async def status(self) -> StatusReport:
        return await self._client.status()

    async def view_names(self, status: StatusReport | None = None) -> list[str]:
        """Every view the daemon projects, as its ``status`` (asked now if not given) lists them."""
        if status is None:
            status = await self.status()
        return list(dict.fromkeys(p.name for p in status.projections))

    async def requeue_quarantine(self) -> SyncNowResult:
        """Flag every quarantined event for another try (``sync_now`` with ``retry_rejected``)."""
        return await self._client.sync_now(retry_rejected=True)

    async def page(self, query: PageQuery) -> Page:
        """One page of ``query.view``; see the module docstring for the fallback."""
        limit = max(1, min(query.limit, MAX_PAGE))
        request = _PagedQuery(
            view=query.view,
            filter=query.filter or None,
            limit=limit,
            order=query.order,
            after=query.after,
            order_by=query.order_by,
            since=query.since,
            until=query.until,
        )
        uses_cursor_params = any(getattr(request, name) is not None for name in _CURSOR_PARAMS)
        if uses_cursor_params and self.cursor_paging is False:
            return await self._limit_page(query, limit)
        try:
            result = await self._client.call(cast(wire.Request, request))
        except BadRequest as exc:
            if uses_cursor_params and _refuses_paging(exc):
                self.cursor_paging = False
                return await self._limit_page(query, limit)
            if query.order_by is not None and "order_by" in exc.message:
                # The daemon pages but does not sort by this column (only by key and
                # time columns): page in its own order and sort each page here.
                page = await self.page(msgspec.structs.replace(query, order_by=None))
                rows = sort_rows(page.rows, query.order_by, descending=query.order == "desc")
                return msgspec.structs.replace(page, rows=rows, sorted_here=True)
            raise
        answer = answer_as(result, dict[str, Any], "query")
        rows = answer_as(answer.get("rows"), list[dict[str, Any]], "query")
        has_next_field = "next" in answer
        next_cursor = answer.get("next")
        if has_next_field:
            self.cursor_paging = True
            return Page(
                view=query.view,
                rows=rows,
                next=next_cursor if isinstance(next_cursor, str) else None,
                paging="cursor",
                more=isinstance(next_cursor, str),
            )
        return Page(view=query.view, rows=rows, next=None, paging="limit", more=len(rows) >= limit)

    async def _limit_page(self, query: PageQuery, limit: int) -> Page:
        if query.after is not None:
            raise BadRequest("this daemon does not page with cursors; ask without 'after'")
        request = _PagedQuery(
            view=query.view, filter=query.filter or None, limit=limit, order=query.order
        )
        result = await self._client.call(cast(wire.Request, request))
        answer = answer_as(result, dict[str, Any], "query")
        rows = answer_as(answer.get("rows"), list[dict[str, Any]], "query")
        full = len(rows) >= limit
        rows = _within(rows, query.order_by, query.since, query.until)
        if query.order_by is not None:
            rows = sort_rows(rows, query.order_by, descending=query.order == "desc")
        return Page(
            view=query.view,
            rows=rows,
            next=None,
            paging="limit",
            more=full,
            sorted_here=query.order_by is not None,
        )

    async def collect(self, query: PageQuery, max_rows: int) -> tuple[list[dict[str, Any]], bool]:
        """Rows of ``query`` page after page, up to ``max_rows``; and whether it stopped short."""
        rows: list[dict[str, Any]] = []
        page_query = msgspec.structs.replace(query, limit=min(MAX_PAGE, max_rows))
        while True:
            page = await self.page(page_query)
            rows.extend(page.rows)
            if len(rows) >= max_rows:
                return rows[:max_rows], page.more or len(rows) > max_rows
            if page.next is None:
                return rows, page.more
            page_query = msgspec.structs.replace(page_query, after=page.next)


def _refuses_paging(exc: BadRequest) -> bool:
    """Whether a ``bad_request`` is the daemon refusing a paging parameter it does not know."""
    message = exc.message
    return any(f"`{name}`" in message or f"'{name}'" in message for name in _CURSOR_PARAMS) or (
        "unknown field" in message
    )


def _within(
    rows: Iterable[dict[str, Any]], column: str | None, since: int | None, until: int | None
) -> list[dict[str, Any]]:
    if column is None or (since is None and until is None):
        return list(rows)
    kept = []
    for row in rows:
        value = row.get(column)
        if not isinstance(value, int):
            continue
        if since is not None and value < since:
            continue
        if until is not None and value >= until:
            continue
        kept.append(row)
    return kept


def sort_rows(rows: list[dict[str, Any]], column: str, *, descending: bool) -> list[dict[str, Any]]:
    """``rows`` sorted by ``column``; missing and null values last, mixed types by their text."""

    def key(row: dict[str, Any]) -> tuple[int, Any]:
        value = row.get(column)
        if value is None:
            return (2, "")
        if isinstance(value, bool | int | float):
            return (0, float(value))
        return (1, str(value))

    present = [r for r in rows if r.get(column) is not None]
    missing = [r for r in rows if r.get(column) is None]
    return sorted(present, key=key, reverse=descending) + missing
