"""The built-in packs' facade methods, without I/O: the method for each event type, the
event a write records (stream from the pack's template, data checked against the
pack's schema before anything is sent or spooled), and the filter a read sends.
:mod:`atlasd.client.pack_facade` has the methods themselves.
"""

from __future__ import annotations

from typing import Any

from atlasd.events import NewEvent

from .calls import client_packs

__all__ = ["WRITE_METHODS", "pack_event", "present"]

#: facade method -> the event type it records
WRITE_METHODS: dict[str, str] = {
    "save_thread": "ThreadSaved",
    "save_message": "MessageSaved",
    "delete_thread": "ThreadDeleted",
    "save_workflow_run": "WorkflowRunSaved",
    "record_trace": "TraceRecorded",
    "record_eval": "EvalRecorded",
    "save_workflow": "WorkflowSaved",
    "save_workflow_execution": "WorkflowExecutionSaved",
    "save_asset": "AssetSaved",
    "asset_downloaded": "AssetDownloaded",
    "delete_asset": "AssetDeleted",
    "record_deployment": "DeploymentRecorded",
    "set_deployment_status": "DeploymentStatusChanged",
    "start_agent_job": "AgentJobStarted",
    "finish_agent_job": "AgentJobFinished",
}


def pack_event(event_type: str, fields: dict[str, Any], meta: dict[str, Any] | None) -> NewEvent:
    """The event for a pack type: data without the optional fields left None, the stream
    from the pack's template; :class:`~atlasd.errors.InvalidValue` if the schema refuses."""
    packs = client_packs()
    definition = packs.events[event_type]
    data = {name: value for name, value in fields.items() if value is not None}
    packs.check_event(event_type, data)
    stream = definition.stream.format_map({k: str(v) for k, v in data.items()})
    return NewEvent(stream=stream, type=event_type, data=data, meta=meta)


def present(**filter: Any) -> dict[str, Any] | None:
    """The filter of a read method: the arguments given (not None), or None for all rows."""
    found = {k: v for k, v in filter.items() if v is not None}
    return found or None
