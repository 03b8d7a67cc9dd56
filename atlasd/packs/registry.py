"""The loaded packs as one set: every view and event type, and the schema check.

Built-in packs come first, then operator packs in file-name order; names are
unique across the set (checked when it is made).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from atlasd.packs.fields import check_data
from atlasd.packs.loader import check_pack_set, load_builtin_packs, load_pack_dir
from atlasd.packs.model import EventDef, Pack, View

__all__ = ["ENGINE_REVISION", "PackSet", "builtin_packs", "load_packs"]

#: Bump when the engine's reading of the same definition changes (views then rebuild).
ENGINE_REVISION = 1


class PackSet:
    """Loaded, checked packs; immutable once made."""

    def __init__(self, packs: Sequence[Pack]) -> None:
        check_pack_set(packs)
        self.packs: tuple[Pack, ...] = tuple(packs)
        self.views: dict[str, View] = {}
        self.events: dict[str, EventDef] = {}
        self.pack_of_view: dict[str, Pack] = {}
        for pack in self.packs:
            for name, view in pack.views.items():
                self.views[name] = view
                self.pack_of_view[name] = pack
            self.events.update(pack.events)
        self.view_names: tuple[str, ...] = tuple(self.views)
        self.event_types: frozenset[str] = frozenset(self.events)

    def view_version(self, view: str) -> int:
        """The version a view's table is built at: its pack's content and the engine."""
        pack = self.pack_of_view[view]
        return (pack.version * 31 + ENGINE_REVISION) % (1 << 53)

    def check_event(self, event_type: str, data: Mapping[str, Any]) -> None:
        """:class:`~atlasd.errors.InvalidValue` when a pack type's data breaks its schema."""
        event = self.events.get(event_type)
        if event is not None:
            check_data(event, data)


@functools.cache
def builtin_packs() -> PackSet:
    """The built-in packs alone (always on)."""
    return PackSet(load_builtin_packs())


def load_packs(packs_dir: Path | None) -> PackSet:
    """Built-in packs plus the operator's from ``packs_dir`` (None: none);
    :class:`~atlasd.packs.loader.PackError` names the file and line of a bad one."""
    if packs_dir is None:
        return builtin_packs()
    extra = load_pack_dir(packs_dir)
    if not extra:
        return builtin_packs()
    return PackSet([*builtin_packs().packs, *extra])
