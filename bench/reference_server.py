"""`python -m bench.reference_server --port P`: the reference `bench.compare` measures the gateway
against, the official `a2a-sdk==0.2.12` server as its documentation builds it
(`A2AStarletteApplication`, `DefaultRequestHandler`, `InMemoryTaskStore`) around a trivial agent that
completes every task with one text artifact. One uvicorn process, with uvicorn's defaults but its
access log off, as the gateway's `serve` has it by default: a log line per request costs either server
a quarter or more of a `tasks/get`, and the comparison is of the servers, not of their logs.
SIGTERM/SIGINT stop it."""

from __future__ import annotations

import argparse
import logging
import warnings

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentSkill,
    Part,
    TextPart,
    UnsupportedOperationError,
)
from a2a.utils import new_task
from a2a.utils.errors import ServerError
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning

from bench.servers import serve


class EchoExecutor(AgentExecutor):
    """Completes at once with the user's text as one artifact: the work of the gateway's echo agent
    without its prompt for another message."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.message is None:
            raise ServerError(error=UnsupportedOperationError(message="A message is required."))
        task = context.current_task or new_task(context.message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.contextId)
        await updater.add_artifact(
            [Part(root=TextPart(text=context.get_user_input()))], name="echo"
        )
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise ServerError(error=UnsupportedOperationError())


def create_app(
    url: str, executor: AgentExecutor | None = None, *, streaming: bool = True
) -> Starlette:
    """The a2a-sdk's own server for `url`: its Starlette app, request handler and in-memory task store,
    running `executor` (the echo one unless given)."""
    card = AgentCard(
        name="a2a-sdk echo",
        description="Echoes the user's text.",
        url=url,
        version="1.0.0",
        capabilities=AgentCapabilities(streaming=streaming),
        defaultInputModes=["text/plain"],
        defaultOutputModes=["text/plain"],
        skills=[AgentSkill(id="echo", name="Echo", description="Echoes.", tags=["echo"])],
    )
    with warnings.catch_warnings():
        # a2a-sdk 0.2.12 imports a status constant that Starlette 1.x has renamed.
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from a2a.server.apps import A2AStarletteApplication

    handler = DefaultRequestHandler(
        agent_executor=executor or EchoExecutor(), task_store=InMemoryTaskStore()
    )
    return A2AStarletteApplication(agent_card=card, http_handler=handler).build()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reference_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    serve(create_app(f"http://{args.host}:{args.port}/"), args.host, args.port, "reference server")


if __name__ == "__main__":
    main()
