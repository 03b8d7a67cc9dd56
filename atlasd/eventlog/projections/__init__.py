"""The views (docs/views.md): tables, fold and queries, all made from the pack definitions."""

from atlasd.eventlog.projections.query import DEFAULT_LIMIT, MAX_LIMIT, build_query, row_to_dict
from atlasd.eventlog.projections.schema import (
    VIEW_SPECS,
    VIEWS,
    ViewSpec,
    create_view_tables,
    drop_view_tables,
    view_specs,
)
from atlasd.packs.engine import Fold

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "VIEWS",
    "VIEW_SPECS",
    "Fold",
    "ViewSpec",
    "build_query",
    "create_view_tables",
    "drop_view_tables",
    "row_to_dict",
    "view_specs",
]
