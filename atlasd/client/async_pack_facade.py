"""The built-in packs' facade methods as :class:`AsyncPackMethods`, mixed into the facade.

The blocking methods (:mod:`atlasd.client.sync_pack_facade`) are generated from
the async ones (:mod:`atlasd.client.async_pack_facade`);
:mod:`atlasd.client.pack_facade` describes both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from .pack_events import pack_event, present
from .results import AppendOutcome

if TYPE_CHECKING:
    from .async_client import AsyncClient

__all__ = ["AsyncPackMethods"]


class AsyncPackMethods:
    """Writes and reads for the built-in packs over :attr:`client`."""

    client: AsyncClient
    meta: dict[str, Any] | None

    async def _pack_record(self, event_type: str, **fields: Any) -> AppendOutcome:
        event = pack_event(event_type, fields, self.meta)
        outcomes = await self.client.append_batch([event])
        return outcomes[0]

    async def _pack_rows(self, view: str, **filter: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self.client.query(view, filter=present(**filter))
        return rows

    async def _pack_first(
        self, view: str, order: Literal["asc", "desc"] = "asc", **filter: Any
    ) -> dict[str, Any] | None:
        rows: list[dict[str, Any]] = await self.client.query(
            view, filter=present(**filter), limit=1, order=order
        )
        return rows[0] if rows else None

    # -- mastra ------------------------------------------------------------------

    async def save_thread(
        self, thread_id: str, resource_id: str, title: str, metadata: dict[str, Any] | None = None
    ) -> AppendOutcome:
        """Save (or update) a conversation thread."""
        return await self._pack_record(
            "ThreadSaved", thread_id=thread_id, resource_id=resource_id, title=title,
            metadata=metadata,
        )  # fmt: skip

    async def save_message(
        self, message_id: str, thread_id: str, role: str, content: Any, type: str | None = None
    ) -> AppendOutcome:
        """Save (or update) a message of a thread."""
        return await self._pack_record(
            "MessageSaved", message_id=message_id, thread_id=thread_id, role=role,
            content=content, type=type,
        )  # fmt: skip

    async def delete_thread(self, thread_id: str) -> AppendOutcome:
        """Delete a thread and its messages."""
        return await self._pack_record("ThreadDeleted", thread_id=thread_id)

    async def save_workflow_run(
        self, run_id: str, workflow_name: str, status: str, snapshot: Any
    ) -> AppendOutcome:
        """Save a workflow run's snapshot."""
        return await self._pack_record(
            "WorkflowRunSaved", run_id=run_id, workflow_name=workflow_name, status=status,
            snapshot=snapshot,
        )  # fmt: skip

    async def record_trace(
        self,
        trace_id: str,
        span_id: str,
        name: str,
        start_ms: int,
        end_ms: int,
        parent_span_id: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> AppendOutcome:
        """Record a trace span."""
        return await self._pack_record(
            "TraceRecorded", trace_id=trace_id, span_id=span_id, name=name, start_ms=start_ms,
            end_ms=end_ms, parent_span_id=parent_span_id, attributes=attributes,
        )  # fmt: skip

    async def record_eval(
        self,
        eval_id: str,
        agent_name: str,
        metric_name: str,
        score: float,
        run_id: str | None = None,
        input: Any = None,
        output: Any = None,
    ) -> AppendOutcome:
        """Record an eval score."""
        return await self._pack_record(
            "EvalRecorded", eval_id=eval_id, agent_name=agent_name, metric_name=metric_name,
            score=score, run_id=run_id, input=input, output=output,
        )  # fmt: skip

    async def thread(self, thread_id: str) -> dict[str, Any] | None:
        return await self._pack_first("threads", thread_id=thread_id)

    async def threads(self, resource_id: str | None = None) -> list[dict[str, Any]]:
        return await self._pack_rows("threads", resource_id=resource_id)

    async def messages(self, thread_id: str) -> list[dict[str, Any]]:
        """The thread's messages, oldest first."""
        return await self._pack_rows("messages", thread_id=thread_id)

    async def workflow_runs(
        self, workflow_name: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        return await self._pack_rows("workflow_runs", workflow_name=workflow_name, status=status)

    async def traces(self, trace_id: str) -> list[dict[str, Any]]:
        return await self._pack_rows("traces", trace_id=trace_id)

    async def evals(
        self, agent_name: str | None = None, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        return await self._pack_rows("evals", agent_name=agent_name, run_id=run_id)

    # -- workflows ---------------------------------------------------------------

    async def save_workflow(self, workflow_id: str, name: str, definition: Any) -> AppendOutcome:
        """Save (or update) a workflow definition."""
        return await self._pack_record(
            "WorkflowSaved", workflow_id=workflow_id, name=name, definition=definition
        )

    async def save_workflow_execution(
        self, execution_id: str, workflow_id: str, status: str, state: Any
    ) -> AppendOutcome:
        """Save (or update) an execution of a workflow."""
        return await self._pack_record(
            "WorkflowExecutionSaved", execution_id=execution_id, workflow_id=workflow_id,
            status=status, state=state,
        )  # fmt: skip

    async def workflows(self, name: str | None = None) -> list[dict[str, Any]]:
        return await self._pack_rows("workflows", name=name)

    async def workflow_executions(
        self, workflow_id: str, status: str | None = None
    ) -> list[dict[str, Any]]:
        return await self._pack_rows("workflow_executions", workflow_id=workflow_id, status=status)

    # -- assets --------------------------------------------------------------------

    async def save_asset(
        self, asset_id: str, name: str, category: str, tags: Sequence[str]
    ) -> AppendOutcome:
        """Save (or update) an asset."""
        return await self._pack_record(
            "AssetSaved", asset_id=asset_id, name=name, category=category, tags=list(tags)
        )

    async def asset_downloaded(self, asset_id: str) -> AppendOutcome:
        """Count one download of an asset."""
        return await self._pack_record("AssetDownloaded", asset_id=asset_id)

    async def delete_asset(self, asset_id: str) -> AppendOutcome:
        return await self._pack_record("AssetDeleted", asset_id=asset_id)

    async def assets(
        self, category: str | None = None, tags: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Assets, by category and having every given tag."""
        return await self._pack_rows("assets", category=category, tags=list(tags) if tags else None)

    # -- deployments -----------------------------------------------------------------

    async def record_deployment(
        self,
        deployment_id: str,
        site_id: str,
        status: str,
        url: str | None = None,
        commit: str | None = None,
    ) -> AppendOutcome:
        """Record a deployment of a site."""
        return await self._pack_record(
            "DeploymentRecorded", deployment_id=deployment_id, site_id=site_id, status=status,
            url=url, commit=commit,
        )  # fmt: skip

    async def set_deployment_status(self, deployment_id: str, status: str) -> AppendOutcome:
        return await self._pack_record(
            "DeploymentStatusChanged", deployment_id=deployment_id, status=status
        )

    async def deployments(self, site_id: str | None = None) -> list[dict[str, Any]]:
        return await self._pack_rows("deployments", site_id=site_id)

    async def latest_deployment(self, site_id: str) -> dict[str, Any] | None:
        """The site's most recently created deployment, or None."""
        return await self._pack_first("deployments", order="desc", site_id=site_id)

    # -- agents ----------------------------------------------------------------------

    async def start_agent_job(
        self, job_id: str, agent: str, project_id: str | None = None, task_id: str | None = None
    ) -> AppendOutcome:
        """Record that an agent job started."""
        return await self._pack_record(
            "AgentJobStarted", job_id=job_id, agent=agent, project_id=project_id, task_id=task_id
        )

    async def finish_agent_job(
        self, job_id: str, status: str, result: Any = None, error: str | None = None
    ) -> AppendOutcome:
        """Record that an agent job ended (``completed`` or ``failed``)."""
        return await self._pack_record(
            "AgentJobFinished", job_id=job_id, status=status, result=result, error=error
        )

    async def agent_jobs(
        self, agent: str | None = None, status: str | None = None, project_id: str | None = None
    ) -> list[dict[str, Any]]:
        return await self._pack_rows(
            "agent_jobs", agent=agent, status=status, project_id=project_id
        )

    async def agent_job(self, job_id: str) -> dict[str, Any] | None:
        return await self._pack_first("agent_jobs", job_id=job_id)
