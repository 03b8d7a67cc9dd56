"""The five ATLAS views (CONTRACT section 4, docs/views.md): tables, fold, queries."""

from atlasd.eventlog.projections.fold import PROJECTED_TYPES, Fold
from atlasd.eventlog.projections.query import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    QueryPage,
    QueryParams,
    build_query,
    page_from_rows,
    row_to_dict,
)
from atlasd.eventlog.projections.schema import (
    VIEW_SPECS,
    VIEWS,
    create_view_tables,
    drop_view_tables,
)

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "PROJECTED_TYPES",
    "VIEWS",
    "VIEW_SPECS",
    "Fold",
    "QueryPage",
    "QueryParams",
    "build_query",
    "create_view_tables",
    "drop_view_tables",
    "page_from_rows",
    "row_to_dict",
]
