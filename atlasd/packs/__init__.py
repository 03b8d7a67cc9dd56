"""Views as data: pack files, their checker, the append-time schema and the fold engine.

The format is described in docs/views.md; the built-in packs are the JSON
files in ``builtin/``.
"""

from atlasd.packs.loader import PackError
from atlasd.packs.model import Pack
from atlasd.packs.registry import PackSet, builtin_packs, default_packs_dir, load_packs

__all__ = ["Pack", "PackError", "PackSet", "builtin_packs", "default_packs_dir", "load_packs"]
