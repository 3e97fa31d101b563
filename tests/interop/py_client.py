"""Drives a gateway with the official Python a2a-sdk 1.3.0 client and prints one JSON object of what it
saw. Run by the interop environment's own Python (tests/interop/envs.py builds it), never by the
project's venv, which holds a2a-sdk 0.2.12:

    .a2a/interop/py-a2a-sdk-1.3.0/bin/python -I tests/interop/py_client.py BASE_URL SCENARIO

Scenarios: `card` (the agent card's interfaces); `jsonrpc-1.0`, `http+json-1.0`, `jsonrpc-0.3` (every
operation through the client made for that one interface of the card). Every 1.0 body the client
receives (JSON responses and each SSE event) is also captured raw, through httpx event hooks, and
parsed strictly (`ignore_unknown_fields=False`) into its a2a_pb2 message: failures are listed under
`validation`. This file is excluded from the project's mypy run: its imports resolve only in that
environment.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as pb
from google.protobuf import json_format
from google.protobuf.empty_pb2 import Empty
from google.protobuf.message import Message as ProtoMessage

CARD_PATH = "/.well-known/agent-card.json"
WEBHOOK = "http://127.0.0.1:9/interop-webhook"
SCENARIOS = {
    "jsonrpc-1.0": ("JSONRPC", "1.0"),
    "http+json-1.0": ("HTTP+JSON", "1.0"),
    "jsonrpc-0.3": ("JSONRPC", "0.3"),
}

# JSON-RPC 1.0 method -> the message its `result` must parse as.
RPC_RESULTS: dict[str, type[ProtoMessage]] = {
    "SendMessage": pb.SendMessageResponse,
    "SendStreamingMessage": pb.StreamResponse,
    "SubscribeToTask": pb.StreamResponse,
    "GetTask": pb.Task,
    "CancelTask": pb.Task,
    "ListTasks": pb.ListTasksResponse,
    "CreateTaskPushNotificationConfig": pb.TaskPushNotificationConfig,
    "GetTaskPushNotificationConfig": pb.TaskPushNotificationConfig,
    "ListTaskPushNotificationConfigs": pb.ListTaskPushNotificationConfigsResponse,
    "DeleteTaskPushNotificationConfig": Empty,
    "GetExtendedAgentCard": pb.AgentCard,
}
# HTTP+JSON 1.0: (method, path below the interface URL) -> the message its body (or each event) is.
REST_RESULTS: list[tuple[str, re.Pattern[str], type[ProtoMessage]]] = [
    ("POST", re.compile(r"/message:send"), pb.SendMessageResponse),
    ("POST", re.compile(r"/message:stream"), pb.StreamResponse),
    ("POST", re.compile(r"/tasks/[^/]+:subscribe"), pb.StreamResponse),
    ("POST", re.compile(r"/tasks/[^/]+:cancel"), pb.Task),
    ("GET", re.compile(r"/tasks"), pb.ListTasksResponse),
    ("GET", re.compile(r"/tasks/[^/:]+"), pb.Task),
    ("POST", re.compile(r"/tasks/[^/]+/pushNotificationConfigs"), pb.TaskPushNotificationConfig),
    (
        "GET",
        re.compile(r"/tasks/[^/]+/pushNotificationConfigs"),
        pb.ListTaskPushNotificationConfigsResponse,
    ),
    (
        "GET",
        re.compile(r"/tasks/[^/]+/pushNotificationConfigs/[^/]+"),
        pb.TaskPushNotificationConfig,
    ),
    ("DELETE", re.compile(r"/tasks/[^/]+/pushNotificationConfigs/[^/]+"), Empty),
    ("GET", re.compile(r"/extendedAgentCard"), pb.AgentCard),
]


class Recorder:
    """Every exchange of the client's httpx client, bodies read raw as the SDK reads them."""

    def __init__(self) -> None:
        self.exchanges: list[dict[str, Any]] = []

    async def on_request(self, request: httpx.Request) -> None:
        try:
            request.extensions["interop_body"] = request.content
        except httpx.RequestNotRead:
            request.extensions["interop_body"] = b""

    async def on_response(self, response: httpx.Response) -> None:
        exchange: dict[str, Any] = {
            "method": response.request.method,
            "url": str(response.request.url),
            "version": response.request.headers.get("a2a-version"),
            "requestBody": response.request.extensions.get("interop_body", b""),
            "status": response.status_code,
            "contentType": response.headers.get("content-type", ""),
            "body": None,
        }
        self.exchanges.append(exchange)
        response.stream = Tee(response.stream, exchange)


class Tee(httpx.AsyncByteStream):
    def __init__(self, inner: Any, exchange: dict[str, Any]) -> None:
        self._inner = inner
        self._exchange = exchange
        self._chunks: list[bytes] = []

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._chunks.append(chunk)
            yield chunk

    async def aclose(self) -> None:
        self._exchange["body"] = b"".join(self._chunks)
        await self._inner.aclose()


def sse_data(text: str) -> list[tuple[str, str]]:
    """(event name, data) of each SSE event."""
    events = []
    for block in re.split(r"\r?\n\r?\n", text):
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif line.startswith("event:"):
                name = line[6:].strip()
        if data:
            events.append((name, "\n".join(data)))
    return events


def strict(body: Any, message: type[ProtoMessage]) -> str | None:
    try:
        json_format.ParseDict(body, message(), ignore_unknown_fields=False)
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    return None


def check_rpc_error(error: Any) -> str | None:
    if not isinstance(error, dict) or not isinstance(error.get("code"), int):
        return f"JSON-RPC error without an integer code: {error!r}"
    if not isinstance(error.get("message"), str):
        return f"JSON-RPC error without a message: {error!r}"
    return None


def check_rest_error(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return f"HTTP+JSON error body is not {{'error': {{...}}}}: {body!r}"
    if not isinstance(error.get("code"), int) or not isinstance(error.get("message"), str):
        return f"HTTP+JSON error without an integer code and a message: {body!r}"
    if not isinstance(error.get("status"), str):
        return f"HTTP+JSON error without a status name: {body!r}"
    return None


def bodies(exchange: dict[str, Any]) -> list[tuple[str, Any]]:
    raw: bytes = exchange["body"] or b""
    text = raw.decode("utf-8", errors="replace")
    if exchange["contentType"].startswith("text/event-stream"):
        return [(name, json.loads(data)) for name, data in sse_data(text)]
    return [("message", json.loads(text))] if text.strip() else []


def validate(exchanges: list[dict[str, Any]], interface: dict[str, str] | None) -> dict[str, Any]:
    checked = 0
    failures: list[str] = []
    for exchange in exchanges:
        path = urlsplit(exchange["url"]).path
        where = f"{exchange['method']} {path}"
        try:
            items = bodies(exchange)
        except ValueError as err:
            failures.append(f"{where}: body is not JSON: {err}")
            continue
        if path == CARD_PATH:
            # The well-known card also carries 0.3 members for 0.3 clients: only known fields checked.
            for _, body in items:
                checked += 1
                try:
                    json_format.ParseDict(body, pb.AgentCard(), ignore_unknown_fields=True)
                except Exception as err:
                    failures.append(f"{where}: AgentCard: {type(err).__name__}: {err}")
            continue
        if exchange["version"] != "1.0" or interface is None:
            continue
        if interface["binding"] == "JSONRPC":
            problems = validate_rpc(exchange, items)
        else:
            problems = validate_rest(exchange, items, interface["url"])
        checked += len(items)
        failures += [f"{where}: {problem}" for problem in problems]
    return {"checked": checked, "failures": failures}


def validate_rpc(exchange: dict[str, Any], items: list[tuple[str, Any]]) -> list[str]:
    request = json.loads(exchange["requestBody"] or b"{}")
    method = request.get("method")
    result_type = RPC_RESULTS.get(method)
    problems = []
    if exchange["status"] != 200:
        problems.append(f"{method}: HTTP status {exchange['status']}")
    for _, body in items:
        if not isinstance(body, dict) or body.get("jsonrpc") != "2.0":
            problems.append(f"{method}: not a JSON-RPC 2.0 response: {body!r}")
            continue
        if body.get("id") != request.get("id"):
            problems.append(f"{method}: id {body.get('id')!r} != request id {request.get('id')!r}")
        if "error" in body:
            problem = check_rpc_error(body["error"])
        elif result_type is None:
            problem = f"unknown method {method!r}"
        elif result_type is Empty and body.get("result") is None:
            problem = None
        else:
            problem = strict(body.get("result"), result_type)
        if problem:
            problems.append(f"{method}: {result_type.__name__ if result_type else '?'}: {problem}")
    return problems


def validate_rest(exchange: dict[str, Any], items: list[tuple[str, Any]], base: str) -> list[str]:
    path = urlsplit(exchange["url"]).path.removeprefix(urlsplit(base).path.rstrip("/"))
    result_type = next(
        (
            message
            for method, pattern, message in REST_RESULTS
            if method == exchange["method"] and pattern.fullmatch(path)
        ),
        None,
    )
    problems = []
    for event, body in items:
        if exchange["status"] >= 400 or event == "error":
            problem = check_rest_error(body)
        elif result_type is None:
            problem = f"no HTTP+JSON operation at {exchange['method']} {path}"
        else:
            problem = strict(body, result_type)
        if problem:
            name = result_type.__name__ if result_type else "?"
            problems.append(f"{name}: {problem}")
    return problems


# --- observations -------------------------------------------------------------------------------


def state_name(state: int) -> str:
    return pb.TaskState.Name(state)


def artifact_text(task: pb.Task) -> str:
    return "".join(part.text for artifact in task.artifacts for part in artifact.parts)


def event_kind(event: pb.StreamResponse) -> str:
    kind = event.WhichOneof("payload") or "none"
    if kind == "task":
        return f"task:{state_name(event.task.status.state)}"
    if kind == "status_update":
        return f"status_update:{state_name(event.status_update.status.state)}"
    return kind


def error_of(err: BaseException) -> dict[str, Any]:
    return {"error": type(err).__name__, "message": str(err)}


def user_message(text: str, **echo: Any) -> pb.Message:
    message = pb.Message(message_id=uuid.uuid4().hex, role=pb.ROLE_USER, parts=[pb.Part(text=text)])
    if echo:
        message.metadata.update({"echo": echo})
    return message


async def send_one(client: Client, message: pb.Message, *, immediately: bool = False) -> pb.Task:
    """A non-streaming send (the client is made with streaming off); the task it answered."""
    request = pb.SendMessageRequest(message=message)
    request.configuration.return_immediately = immediately
    responses = [response async for response in client.send_message(request)]
    if len(responses) != 1 or responses[0].WhichOneof("payload") != "task":
        raise AssertionError(f"expected one task, got {[event_kind(r) for r in responses]}")
    return responses[0].task


class Run:
    """The operations of one interface, each observed apart so one failure hides no other."""

    def __init__(
        self, blocking: Client, streaming: Client, card: pb.AgentCard, recorder: Recorder
    ) -> None:
        self.blocking = blocking
        self.streaming = streaming
        self.card = card
        self.recorder = recorder
        self.sent: pb.Task | None = None

    async def observe(self, name: str, operation: Callable[[], Awaitable[dict[str, Any]]]) -> Any:
        try:
            return await asyncio.wait_for(operation(), 20)
        except Exception as err:
            if isinstance(err, AssertionError | TypeError | AttributeError | KeyError):
                return {**error_of(err), "traceback": traceback.format_exc(limit=3)}
            return error_of(err)

    async def send(self) -> dict[str, Any]:
        self.sent = await send_one(self.blocking, user_message("hello"))
        return {
            "state": state_name(self.sent.status.state),
            "artifactText": artifact_text(self.sent),
            "artifactNames": [artifact.name for artifact in self.sent.artifacts],
        }

    async def stream(self) -> dict[str, Any]:
        request = pb.SendMessageRequest(message=user_message("streamed", chunks=3))
        events = [event async for event in self.streaming.send_message(request)]
        text = "".join(
            part.text
            for event in events
            if event.WhichOneof("payload") == "artifact_update"
            for part in event.artifact_update.artifact.parts
        )
        return {"kinds": [event_kind(event) for event in events], "artifactText": text}

    async def get(self) -> dict[str, Any]:
        if self.sent is None:
            raise AssertionError("send failed: no task to get")
        task = await self.blocking.get_task(pb.GetTaskRequest(id=self.sent.id))
        return {
            "sameId": task.id == self.sent.id,
            "sameContext": task.context_id == self.sent.context_id,
            "state": state_name(task.status.state),
            "artifactText": artifact_text(task),
            "historyRoles": [pb.Role.Name(message.role) for message in task.history],
        }

    async def list(self) -> dict[str, Any]:
        if self.sent is None:
            raise AssertionError("send failed: no task to list")
        listed = await self.blocking.list_tasks(
            pb.ListTasksRequest(context_id=self.sent.context_id)
        )
        return {
            "ids": ["sent" if task.id == self.sent.id else task.id for task in listed.tasks],
            "states": [state_name(task.status.state) for task in listed.tasks],
            "nextPageToken": listed.next_page_token,
            "totalSize": listed.total_size,
        }

    async def subscribe(self) -> dict[str, Any]:
        text = "abcdefgh"
        task = await send_one(
            self.blocking, user_message(text, chunks=4, delay=0.4), immediately=True
        )
        events = [
            event async for event in self.streaming.subscribe(pb.SubscribeToTaskRequest(id=task.id))
        ]
        seen = ""
        for event in events:
            if event.WhichOneof("payload") == "task":
                seen = artifact_text(event.task)
            elif event.WhichOneof("payload") == "artifact_update":
                update = event.artifact_update
                piece = "".join(part.text for part in update.artifact.parts)
                seen = seen + piece if update.append else piece
        kinds = [event_kind(event) for event in events]
        # The snapshot's state and how many chunks came before it depend on timing: not reported.
        return {
            "sentState": state_name(task.status.state),
            "first": kinds[0].split(":")[0] if kinds else None,
            "last": kinds[-1] if kinds else None,
            "kindsSeen": sorted({kind.split(":")[0] for kind in kinds}),
            "artifactText": seen,
        }

    async def cancel(self) -> dict[str, Any]:
        task = await send_one(
            self.blocking, user_message("slow", chunks=2, delay=30), immediately=True
        )
        canceled = await self.blocking.cancel_task(pb.CancelTaskRequest(id=task.id))
        after = await self.blocking.get_task(pb.GetTaskRequest(id=task.id))
        return {
            "sentState": state_name(task.status.state),
            "sameId": canceled.id == task.id,
            "state": state_name(canceled.status.state),
            "stateAfterGet": state_name(after.status.state),
        }

    async def push(self) -> dict[str, Any]:
        task = await send_one(self.blocking, user_message("push", finalState="input-required"))
        config = pb.TaskPushNotificationConfig(
            task_id=task.id,
            url=WEBHOOK,
            token="tok",
            authentication=pb.AuthenticationInfo(scheme="Bearer", credentials="secret"),
        )
        observed: dict[str, Any] = {"taskState": state_name(task.status.state)}
        try:
            created = await self.blocking.create_task_push_notification_config(config)
            observed["created"] = self._config(created, task.id)
            got = await self.blocking.get_task_push_notification_config(
                pb.GetTaskPushNotificationConfigRequest(task_id=task.id, id=created.id)
            )
            observed["getSame"] = got == created
            listed = await self.blocking.list_task_push_notification_configs(
                pb.ListTaskPushNotificationConfigsRequest(task_id=task.id)
            )
            observed["listed"] = [config.id == created.id for config in listed.configs]
            await self.blocking.delete_task_push_notification_config(
                pb.DeleteTaskPushNotificationConfigRequest(task_id=task.id, id=created.id)
            )
            after = await self.blocking.list_task_push_notification_configs(
                pb.ListTaskPushNotificationConfigsRequest(task_id=task.id)
            )
            observed["listedAfterDelete"] = len(after.configs)
        finally:
            await self.blocking.cancel_task(pb.CancelTaskRequest(id=task.id))
        return observed

    @staticmethod
    def _config(config: pb.TaskPushNotificationConfig, task_id: str) -> dict[str, Any]:
        shown = json_format.MessageToDict(config)
        shown["taskId"] = "task" if shown.get("taskId") == task_id else shown.get("taskId")
        shown["id"] = "set" if shown.get("id") else shown.get("id")
        return shown

    async def extended_card(self) -> dict[str, Any]:
        """As the SDK does it: from the server only when the card offers an extended card."""
        before = len(self.recorder.exchanges)
        card = await self.blocking.get_extended_agent_card(pb.GetExtendedAgentCardRequest())
        return {"requests": len(self.recorder.exchanges) - before, "sameAsCard": card == self.card}


async def extended_card_forced(
    factory: ClientFactory, card: pb.AgentCard, recorder: Recorder
) -> dict[str, Any]:
    """GetExtendedAgentCard asked of the server even though the card does not offer one: the SDK
    answers from its own copy when `capabilities.extendedAgentCard` is false, so a copy says true."""
    forced = pb.AgentCard()
    forced.CopyFrom(card)
    forced.capabilities.extended_agent_card = True
    client = factory.create(forced)
    before = len(recorder.exchanges)
    try:
        fetched = await client.get_extended_agent_card(pb.GetExtendedAgentCardRequest())
        observed: dict[str, Any] = {"name": fetched.name}
    except Exception as err:
        observed = error_of(err)
    observed["requests"] = len(recorder.exchanges) - before
    return observed


def interfaces_of(card: pb.AgentCard) -> list[dict[str, str]]:
    return [
        {"binding": i.protocol_binding, "version": i.protocol_version, "url": i.url}
        for i in card.supported_interfaces
    ]


async def resolve_card(http: httpx.AsyncClient, base_url: str) -> pb.AgentCard:
    return await A2ACardResolver(http, base_url).get_agent_card()


async def card_scenario(http: httpx.AsyncClient, base_url: str) -> dict[str, Any]:
    card = await resolve_card(http, base_url)
    return {
        "interfaces": interfaces_of(card),
        "streaming": card.capabilities.streaming,
        "pushNotifications": card.capabilities.push_notifications,
        "extendedAgentCard": card.capabilities.extended_agent_card,
    }


async def interface_scenario(
    http: httpx.AsyncClient, base_url: str, scenario: str, recorder: Recorder
) -> tuple[dict[str, Any], dict[str, str]]:
    binding, version = SCENARIOS[scenario]
    card = await resolve_card(http, base_url)
    chosen = [
        i
        for i in card.supported_interfaces
        if i.protocol_binding == binding and i.protocol_version == version
    ]
    if len(chosen) != 1:
        raise LookupError(f"the card lists {len(chosen)} {binding} {version} interfaces")
    # A card of this one interface: the factory's producer then picks that interface's transport
    # (CompatJsonRpcTransport for 0.3) as it would for a server that offered only it.
    single = pb.AgentCard()
    single.CopyFrom(card)
    del single.supported_interfaces[:]
    single.supported_interfaces.append(chosen[0])
    interface = {"binding": binding, "version": version, "url": chosen[0].url}

    def factory(streaming: bool) -> ClientFactory:
        config = ClientConfig(
            streaming=streaming, httpx_client=http, supported_protocol_bindings=[binding]
        )
        return ClientFactory(config)

    blocking = factory(streaming=False).create(single)
    streaming = factory(streaming=True).create(single)
    run = Run(blocking, streaming, single, recorder)
    observed: dict[str, Any] = {
        "interface": interface,
        "transport": type(blocking._transport).__name__,
    }
    for name, operation in [
        ("send", run.send),
        ("stream", run.stream),
        ("get", run.get),
        ("list", run.list),
        ("subscribe", run.subscribe),
        ("cancel", run.cancel),
        ("push", run.push),
        ("extendedCard", run.extended_card),
    ]:
        observed[name] = await run.observe(name, operation)
    observed["extendedCardForced"] = await extended_card_forced(factory(False), single, recorder)
    return observed, interface


async def main(base_url: str, scenario: str) -> dict[str, Any]:
    recorder = Recorder()
    output: dict[str, Any] = {"scenario": scenario}
    interface = None
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(30, read=90),
        headers={"accept-encoding": "identity"},
        event_hooks={"request": [recorder.on_request], "response": [recorder.on_response]},
    ) as http:
        try:
            if scenario == "card":
                output.update(await card_scenario(http, base_url))
            elif scenario in SCENARIOS:
                observed, interface = await interface_scenario(http, base_url, scenario, recorder)
                output.update(observed)
            else:
                raise SystemExit(f"unknown scenario {scenario!r}: card, {', '.join(SCENARIOS)}")
        except Exception as err:
            output["fatal"] = error_of(err)
    output["validation"] = validate(recorder.exchanges, interface)
    return output


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(f"usage: {sys.argv[0]} BASE_URL SCENARIO")
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2])), sort_keys=True))
