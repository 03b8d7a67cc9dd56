"""How close the database is to its size cap (``max_db_bytes``): the one rule that
``status`` and ``doctor`` both apply.

At :data:`CAP_WARN` of the cap it is an alert (``status``'s ``cap.alert``, a
doctor warning), at :data:`CAP_FAIL` a doctor failure; appends are refused
only at the cap itself, so there is room to act between the alert and then.
"""

from __future__ import annotations

from typing import Literal

from atlasd.reports import CapState

__all__ = ["CAP_FAIL", "CAP_WARN", "CapState", "cap_state"]

#: Share of the cap from which ``status`` alerts and ``doctor`` warns.
CAP_WARN = 0.75
#: Share of the cap from which ``doctor`` fails.
CAP_FAIL = 0.90


def cap_state(used: int, cap: int) -> CapState:
    share = used / cap
    level: Literal["ok", "warn", "fail"] = (
        "fail" if share >= CAP_FAIL else "warn" if share >= CAP_WARN else "ok"
    )
    return CapState(bytes=cap, used=used, share=round(share, 4), alert=level != "ok", level=level)
