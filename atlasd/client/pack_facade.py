"""Typed facade methods for the built-in packs (docs/views.md): record and read.

Each write method records one event type of a pack: its parameters are the
type's data fields (required ones first, in the pack's order, then the
optional ones defaulting to None), its stream comes from the pack's template,
and its data is checked against the pack's schema before anything is sent or
spooled. ``tests/client/test_pack_facade.py`` compares every method with the
pack files, so the two cannot drift apart. Read methods query the packs'
views and need a running daemon.

The methods are mixed into :class:`~atlasd.client.Atlas` (blocking) and
:class:`~atlasd.client.AsyncAtlas`::

    with Atlas() as atlas:
        atlas.save_thread("th-1", "user-7", "Trip plans")
        atlas.save_message("m-1", "th-1", "user", "Where to?")
        rows = atlas.messages("th-1")
"""

from __future__ import annotations

from .async_pack_facade import AsyncPackMethods
from .pack_events import WRITE_METHODS, pack_event
from .sync_pack_facade import PackMethods

__all__ = ["WRITE_METHODS", "AsyncPackMethods", "PackMethods", "pack_event"]
