"""The event types every layer shares, below all of them (docs/eventlog.md).

Clients, the socket protocol, the spool, the daemon and the store all speak
of events in these terms; none of it touches SQLite, so a client loads none
of the store:

- :class:`NewEvent`: what a client asks to append (the one input struct on the
  append path), :class:`Event`: a stored event, :class:`AppendResult`: where an
  appended event stands.
- :func:`new_event_id` / :func:`new_event_ids` / :func:`canonical_event_id`: ids.
- :func:`validate_new_event`: the one gate an event passes before it is
  queued or spooled.
"""

from atlasd.events.ids import canonical_event_id, new_event_id, new_event_ids
from atlasd.events.model import AppendResult, Event, NewEvent
from atlasd.events.validation import validate_new_event

__all__ = [
    "AppendResult",
    "Event",
    "NewEvent",
    "canonical_event_id",
    "new_event_id",
    "new_event_ids",
    "validate_new_event",
]
