"""`GET /tasks/{id}/events`: the browser view of a task's events, for `EventSource` (which resends
`Last-Event-ID` when it reconnects; `?lastEventId=` for clients that cannot set headers)."""

from __future__ import annotations

import logging

from opentelemetry import trace
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp
from temporalio.service import RPCError

from config.redis_clients import REDIS_ERRORS
from config.telemetry import annotate_task, caller_context, remember_span
from gateway.access.admission import Admission
from gateway.access.auth import Principal
from gateway.access.tenancy import Tenancy
from gateway.responses import error_http_response, json_response, unavailable
from gateway.streaming.log import parse_last_event_id
from gateway.streaming.renderers import BrowserRenderer
from gateway.streaming.streams import Streams
from protocol import A2AError, InternalError, TaskNotFoundError, error_response
from protocol.limits import Violation, id_problem, limit_error

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


class BrowserStreams:
    def __init__(self, admission: Admission, tenancy: Tenancy, streams: Streams) -> None:
        self._admission = admission
        self._tenancy = tenancy
        self._streams = streams

    async def task_events(self, request: Request) -> ASGIApp:
        with tracer.start_as_current_span(
            "GET /tasks/{task_id}/events",
            context=caller_context(request.headers),
            kind=trace.SpanKind.SERVER,
        ) as span:
            remember_span(span)
            annotate_task(request.path_params["task_id"])
            try:
                principal = await self._admission.admit(request, None, browser=True)
            except A2AError as err:
                return self._admission.refused(err)
            return await self._open(principal, request)

    async def _open(self, principal: Principal, request: Request) -> ASGIApp:
        task_id = request.path_params["task_id"]
        raw = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
        try:
            problem = id_problem(task_id)
            if problem is not None:
                raise limit_error("Invalid parameters", [Violation("id", problem)])
            position = parse_last_event_id(raw) or "0"
            await self._tenancy.authorize(task_id, principal)
            lease = self._streams.lease(self._tenancy.scope(principal))
        except TaskNotFoundError as err:
            return json_response(error_response(None, err), 404)
        except A2AError as err:
            if err.http_status == 200:
                return json_response(error_response(None, err), 400)
            return error_http_response(error_response(None, err), err)
        except (*REDIS_ERRORS, OSError, TimeoutError, RPCError) as err:
            logger.warning("Task %s's owner could not be checked: %s", task_id, err)
            return unavailable(
                InternalError("Internal error: the task's owner could not be checked; retry")
            )
        try:
            stream = await self._streams.open(lease, task_id, position, BrowserRenderer())
        except TaskNotFoundError as err:
            return json_response(error_response(None, err), 404)
        except InternalError as err:
            return unavailable(err)
        if stream.finished and not stream.first:
            # Nothing after Last-Event-ID and the task is over: 204 tells EventSource to stop.
            await stream.close()
            return Response(status_code=204)
        return stream
