"""The loaded packs as one set: every view and event type, and the schema check.

Built-in packs come first, then operator packs in file-name order; names are
unique across the set (checked when it is made).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from atlasd.errors import InvalidValue
from atlasd.packs.fields import compile_checker
from atlasd.packs.loader import check_pack_set, load_builtin_packs, load_pack_dir
from atlasd.packs.model import EventDef, Pack, View

__all__ = ["ENGINE_REVISION", "PackSet", "builtin_packs", "default_packs_dir", "load_packs"]

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
        self._checkers = {t: compile_checker(event) for t, event in self.events.items()}
        self.event_types: frozenset[str] = frozenset(self.events)

    def view_version(self, view: str) -> int:
        """The version a view's table is built at: its pack's content and the engine."""
        pack = self.pack_of_view[view]
        return (pack.version * 31 + ENGINE_REVISION) % (1 << 53)

    def view_types(self) -> dict[str, frozenset[str]]:
        """For each view, the event types that can change it: those acting on it, and
        those acting on the rows it counts."""
        touching: dict[str, set[str]] = {name: set() for name in self.views}
        for event_type, event in self.events.items():
            for action in event.apply:
                touching[action.view].add(event_type)
        out = {}
        for name, view in self.views.items():
            types = set(touching[name])
            for count in view.counts:
                types |= touching[count.view]
            out[name] = frozenset(types)
        return out

    def check_event(self, event_type: str, data: Mapping[str, Any]) -> None:
        """:class:`~atlasd.errors.InvalidValue` when a pack type's data breaks its schema."""
        checker = self._checkers.get(event_type)
        if checker is not None:
            message = checker(data)
            if message is not None:
                raise InvalidValue(message)


def default_packs_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$ATLASD_PACKS_DIR``; else ``/etc/atlasd/packs`` as root; else
    ``$XDG_CONFIG_HOME/atlasd/packs`` (``~/.config/atlasd/packs``)."""
    env = os.environ if env is None else env
    if env.get("ATLASD_PACKS_DIR"):
        return Path(env["ATLASD_PACKS_DIR"])
    if os.geteuid() == 0:
        return Path("/etc/atlasd/packs")
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or "~").expanduser() / ".config")
    return Path(base) / "atlasd" / "packs"


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
