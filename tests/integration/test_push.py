"""Push notifications end to end: config methods, delivery to a real webhook receiver on loopback (which
the webhook policy admits by allowlist), retries, ordering, a receiver that is down, a worker killed
mid-delivery, configs set on finished tasks, and the webhook address policy at `set` and at delivery."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from temporalio.client import Client

from config.webhook_policy import system_resolver
from gateway.devstack.processes import ManagedProcess
from gateway.settings import GatewaySettings
from tests.a2a_v1_schema import assert_valid_v1
from tests.conftest import RpcClient, app_client
from tests.integration.ended import final_status
from tests.integration.sse import echo_message
from tests.integration.test_worker_crash import start_worker
from tests.integration.webhook import Receiver, receiver
from tests.waiting import eventually
from workers import WorkerSettings, create_worker

LOOPBACK = ["127.0.0.1/32"]
# A public address (TEST-NET would be refused as reserved): what "rebind.test" resolves to at `set`.
PUBLIC = "93.184.215.14"


class Resolver:
    """Answers for the host names a test maps, asks the system for the rest."""

    def __init__(self) -> None:
        self.hosts: dict[str, list[str]] = {}

    async def __call__(self, host: str, port: int) -> list[str]:
        if host in self.hosts:
            return self.hosts[host]
        return await system_resolver(host, port)


@pytest.fixture(scope="module")
def push_queue() -> str:
    return f"test-push-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def worker_dns() -> Resolver:
    return Resolver()


@pytest.fixture(scope="module")
def gateway_dns() -> Resolver:
    return Resolver()


@pytest.fixture(scope="module")
def outcomes() -> Counter[str]:
    return Counter()


@pytest.fixture(scope="module")
async def push_worker(
    temporal_client: Client,
    redis: Redis,
    worker_settings: WorkerSettings,
    push_queue: str,
    worker_dns: Resolver,
    outcomes: Counter[str],
) -> AsyncIterator[None]:
    settings = worker_settings.model_copy(
        update={
            "task_queue": push_queue,
            "push_allow_http": True,
            "push_allowlist": LOOPBACK,
            "push_timeout_seconds": 2.0,
        }
    )
    async with create_worker(
        temporal_client, redis, settings, resolver=worker_dns, push_outcomes=outcomes
    ):
        yield


def push_settings(gateway_settings: GatewaySettings, queue: str) -> GatewaySettings:
    return gateway_settings.model_copy(
        update={
            "task_queue": queue,
            "push_allow_http": True,
            "push_allowlist": LOOPBACK,
            "push_attempt_timeout_seconds": 2.0,
            "push_initial_interval_seconds": 0.2,
            "push_maximum_interval_seconds": 0.4,
            "push_max_attempts": 20,
        }
    )


@pytest.fixture(scope="module")
async def push_rpc(
    gateway_settings: GatewaySettings, push_queue: str, gateway_dns: Resolver, push_worker: None
) -> AsyncIterator[RpcClient]:
    settings = push_settings(gateway_settings, push_queue)
    async with app_client(settings, resolver=gateway_dns) as http:
        yield RpcClient(http)


Counted = Callable[[], Counter[str]]


@pytest.fixture
def counted(outcomes: Counter[str]) -> Counted:
    """The delivery outcomes the push worker counted since the test began."""
    before = outcomes.copy()
    return lambda: outcomes - before


async def finished(temporal_client: Client, task_id: str) -> None:
    """Wait for the task's workflow to close: it stays open until its notifications are delivered."""
    async with asyncio.timeout(60):
        await final_status(temporal_client, task_id)


async def send(rpc: RpcClient, message: dict[str, Any], **configuration: Any) -> dict[str, Any]:
    body = await rpc.call("message/send", {"message": message, "configuration": configuration})
    assert "result" in body, body
    result: dict[str, Any] = body["result"]
    return result


async def current(rpc: RpcClient, task_id: str) -> dict[str, Any]:
    body = await rpc.call("tasks/get", {"id": task_id})
    result: dict[str, Any] = body["result"]
    return result


def states(requests: list[Any]) -> list[str]:
    return [request.json()["status"]["state"] for request in requests]


async def test_push_config_set_get_list_delete(
    push_rpc: RpcClient, temporal_client: Client
) -> None:
    task = await send(push_rpc, echo_message("hi", finalState="input-required"))
    task_id = task["id"]
    hook = {"url": "https://hooks.example.com/a2a", "token": "tok-1"}
    first = await push_rpc.call(
        "tasks/pushNotificationConfig/set", {"taskId": task_id, "pushNotificationConfig": hook}, 1
    )
    assigned = first["result"]["pushNotificationConfig"]["id"]
    assert first == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"taskId": task_id, "pushNotificationConfig": {**hook, "id": assigned}},
    }
    mine = {
        "url": "https://hooks.example.com/other",
        "id": "mine",
        "authentication": {"schemes": ["Bearer"], "credentials": "s3cret"},
    }
    masked = {**mine, "authentication": {"schemes": ["Bearer"], "credentials": "********"}}
    second = await push_rpc.call(
        "tasks/pushNotificationConfig/set", {"taskId": task_id, "pushNotificationConfig": mine}, 2
    )
    assert second["result"] == {"taskId": task_id, "pushNotificationConfig": masked}
    by_id = await push_rpc.call(
        "tasks/pushNotificationConfig/get", {"id": task_id, "pushNotificationConfigId": "mine"}
    )
    assert by_id["result"] == {"taskId": task_id, "pushNotificationConfig": masked}
    any_one = await push_rpc.call("tasks/pushNotificationConfig/get", {"id": task_id})
    assert any_one["result"]["pushNotificationConfig"]["id"] == assigned
    listed = await push_rpc.call("tasks/pushNotificationConfig/list", {"id": task_id}, 3)
    assert listed == {
        "jsonrpc": "2.0",
        "id": 3,
        "result": [
            {"taskId": task_id, "pushNotificationConfig": {**hook, "id": assigned}},
            {"taskId": task_id, "pushNotificationConfig": masked},
        ],
    }
    deleted = {"id": task_id, "pushNotificationConfigId": "mine"}
    for attempt in (4, 5):
        assert await push_rpc.call("tasks/pushNotificationConfig/delete", deleted, attempt) == {
            "jsonrpc": "2.0",
            "id": attempt,
            "result": None,
        }
    assert await push_rpc.call("tasks/pushNotificationConfig/get", deleted, 6) == {
        "jsonrpc": "2.0",
        "id": 6,
        "error": {
            "code": -32602,
            "message": f"Task '{task_id}' has no push notification config 'mine'",
        },
    }
    remaining = await push_rpc.call("tasks/pushNotificationConfig/list", {"id": task_id})
    assert [item["pushNotificationConfig"]["id"] for item in remaining["result"]] == [assigned]
    await push_rpc.call(
        "tasks/pushNotificationConfig/delete", {"id": task_id, "pushNotificationConfigId": assigned}
    )
    await push_rpc.call("tasks/cancel", {"id": task_id})
    # Notifications queued before the deletes end as "deleted" attempts: let them, before the next
    # test counts outcomes.
    await finished(temporal_client, task_id)


@pytest.mark.parametrize(
    ("method", "params"),
    [
        (
            "tasks/pushNotificationConfig/set",
            {"taskId": "nope", "pushNotificationConfig": {"url": "https://hooks.example.com/"}},
        ),
        ("tasks/pushNotificationConfig/get", {"id": "nope"}),
        ("tasks/pushNotificationConfig/list", {"id": "nope"}),
        ("tasks/pushNotificationConfig/delete", {"id": "nope", "pushNotificationConfigId": "x"}),
    ],
)
async def test_push_config_methods_unknown_task(
    push_rpc: RpcClient, method: str, params: dict[str, Any]
) -> None:
    assert await push_rpc.call(method, params, 7) == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": -32001, "message": "Task not found: 'nope'"},
    }


async def test_delivery_with_token_and_bearer_once(
    push_rpc: RpcClient, temporal_client: Client, counted: Counted
) -> None:
    async with receiver() as hook:
        config = {
            "url": hook.url,
            "token": "tok-2",
            "authentication": {"schemes": ["Bearer"], "credentials": "bearer-secret"},
        }
        task = await send(push_rpc, echo_message("hello"), pushNotificationConfig=config)
        await finished(temporal_client, task["id"])
        [request] = hook.received
        assert (request.method, request.path) == ("POST", "/hook")
        assert {
            name: request.headers[name]
            for name in ("content-type", "x-a2a-notification-token", "authorization")
        } == {
            "content-type": "application/json",
            "x-a2a-notification-token": "tok-2",
            "authorization": "Bearer bearer-secret",
        }
        assert request.json() == await current(push_rpc, task["id"])
    history = await temporal_client.get_workflow_handle(task["id"]).fetch_history()
    assert "bearer-secret" not in history.to_json()
    assert counted() == Counter({"delivered": 1})


async def test_task_too_large_for_a_temporal_payload_notified(
    push_rpc: RpcClient, temporal_client: Client, counted: Counted
) -> None:
    """1.2 MB of text, twice in the Task (history and artifact): over Temporal's 2 MiB payload cap,
    which the notification never carries."""
    async with receiver() as hook:
        text = "x" * 1_200_000
        task = await send(push_rpc, echo_message(text), pushNotificationConfig={"url": hook.url})
        await finished(temporal_client, task["id"])
        [request] = hook.received
        assert request.json() == await current(push_rpc, task["id"])
    assert counted() == Counter({"delivered": 1})


async def test_follow_up_with_push_config_to_finished_task_refused_and_not_stored(
    push_rpc: RpcClient, temporal_client: Client, counted: Counted
) -> None:
    task = await send(push_rpc, echo_message("over"))
    await finished(temporal_client, task["id"])
    follow_up = {**echo_message("again"), "taskId": task["id"]}
    body = await push_rpc.call(
        "message/send",
        {
            "message": follow_up,
            "configuration": {"pushNotificationConfig": {"url": "https://hooks.example.com/"}},
        },
        9,
    )
    assert body == {
        "jsonrpc": "2.0",
        "id": 9,
        "error": {
            "code": -32602,
            "message": f"Task '{task['id']}' is completed; a terminal task accepts no messages.",
        },
    }
    listed = await push_rpc.call("tasks/pushNotificationConfig/list", {"id": task["id"]})
    assert listed["result"] == []
    assert counted() == Counter()


async def test_retries_after_500s_and_keeps_order(
    push_rpc: RpcClient, temporal_client: Client, counted: Counted
) -> None:
    async with receiver(statuses=[500, 500]) as hook:
        config = {"url": hook.url}
        task = await send(
            push_rpc,
            echo_message("one", finalState="input-required"),
            pushNotificationConfig=config,
        )
        assert task["status"]["state"] == "input-required"
        follow_up = {**echo_message("two"), "taskId": task["id"]}
        assert (await send(push_rpc, follow_up))["status"]["state"] == "completed"
        await finished(temporal_client, task["id"])
        assert states(hook.received) == [
            "input-required",
            "input-required",
            "input-required",
            "completed",
        ]
    assert counted() == Counter({"retry": 2, "delivered": 2})


async def test_receiver_down_then_up_delivered(
    push_rpc: RpcClient,
    temporal_client: Client,
    counted: Counted,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    hook = Receiver()
    await hook.start()
    await hook.stop()
    task = await send(push_rpc, echo_message("later"), pushNotificationConfig={"url": hook.url})
    await eventually(
        counted,
        30,
        what="two deliveries to the stopped receiver counted as retries",
        until=lambda outcomes: outcomes["retry"] >= 2,
    )
    await hook.start()
    try:
        await finished(temporal_client, task["id"])
    finally:
        await hook.stop()
    assert states(hook.received) == ["completed"]
    assert counted()["delivered"] == 1
    assert counted()["retry"] >= 2
    # One line per attempt, ours; no traceback from Temporal's worker for a webhook not reached.
    attempts = [
        r for r in caplog.records if r.getMessage().startswith("push retry: task " + task["id"])
    ]
    assert len(attempts) == counted()["retry"]
    assert [r for r in caplog.records if r.exc_info and "Webhook" in str(r.exc_info[1])] == []


async def test_rejected_4xx_and_redirect_not_retried(
    push_rpc: RpcClient, temporal_client: Client, counted: Counted
) -> None:
    async with receiver() as target, receiver(statuses=[404]) as gone:  # noqa: SIM117
        async with receiver(statuses=[302], headers={"location": target.url}) as moved:
            for hook in (gone, moved):
                task = await send(
                    push_rpc, echo_message("x"), pushNotificationConfig={"url": hook.url}
                )
                await finished(temporal_client, task["id"])
            assert (len(gone.received), len(moved.received), len(target.received)) == (1, 1, 0)
    assert counted() == Counter({"rejected": 2})


async def test_config_set_on_completed_task_notified(
    push_rpc: RpcClient, temporal_client: Client, counted: Counted
) -> None:
    task = await send(push_rpc, echo_message("done"))
    await finished(temporal_client, task["id"])
    async with receiver() as hook:
        await push_rpc.call(
            "tasks/pushNotificationConfig/set",
            {"taskId": task["id"], "pushNotificationConfig": {"url": hook.url, "id": "late"}},
        )
        [request] = await hook.wait_for(1)
        assert request.json() == await current(push_rpc, task["id"])
        await temporal_client.get_workflow_handle(f"{task['id']}/push/late").result()
        assert len(hook.received) == 1
    assert counted() == Counter({"delivered": 1})


async def test_every_status_change_when_configured(
    gateway_settings: GatewaySettings,
    push_queue: str,
    gateway_dns: Resolver,
    push_worker: None,
    temporal_client: Client,
) -> None:
    settings = push_settings(gateway_settings, push_queue).model_copy(
        update={"push_every_status": True}
    )
    async with app_client(settings, resolver=gateway_dns) as http, receiver() as hook:
        rpc = RpcClient(http)
        task = await send(rpc, echo_message("all"), pushNotificationConfig={"url": hook.url})
        await finished(temporal_client, task["id"])
        assert states(hook.received) == ["working", "completed"]


async def test_worker_killed_during_delivery_still_delivered(
    gateway_settings: GatewaySettings,
    temporal_address: str,
    redis_url: str,
    temporal_client: Client,
    tmp_path: Path,
) -> None:
    queue = f"push-crash-{uuid.uuid4().hex[:8]}"
    env = {"A2A_PUSH_ALLOW_HTTP": "true", "A2A_PUSH_ALLOWLIST": "127.0.0.1/32"}
    first = start_worker(queue, temporal_address, redis_url, tmp_path / "first.log", env)
    second: ManagedProcess | None = None
    try:
        async with (
            app_client(push_settings(gateway_settings, queue)) as http,
            receiver(hold=asyncio.Event()) as hook,
        ):
            rpc = RpcClient(http)
            task = await send(rpc, echo_message("crash"), pushNotificationConfig={"url": hook.url})
            await hook.wait_for(1)
            first.kill()
            assert hook.hold is not None
            hook.hold.set()
            second = start_worker(queue, temporal_address, redis_url, tmp_path / "second.log", env)
            await finished(temporal_client, task["id"])
            assert [request.json() for request in hook.received] == [
                await current(rpc, task["id"])
            ] * 2
    finally:
        first.stop()
        if second is not None:
            second.stop()


POLICY_HINT = "the webhook policy refuses it (A2A_PUSH_ALLOWLIST admits addresses or hosts)"
REFUSED_AT_SET = [
    ("https://127.0.0.1/h", "127.0.0.1 is a loopback address"),
    ("https://[::1]/h", "::1 is a loopback address"),
    (
        "https://[::ffff:127.0.0.1]/h",
        "::ffff:127.0.0.1 is a loopback address (IPv4 127.0.0.1 inside IPv6)",
    ),
    ("https://10.1.2.3/h", "10.1.2.3 is a private address"),
    ("https://192.168.0.9/h", "192.168.0.9 is a private address"),
    ("https://[fc00::1]/h", "fc00::1 is a private address"),
    ("https://169.254.10.10/h", "169.254.10.10 is a link-local address"),
    ("https://[fe80::1]/h", "fe80::1 is a link-local address"),
    ("https://100.64.0.1/h", "100.64.0.1 is a carrier-grade NAT address"),
    ("https://224.0.0.1/h", "224.0.0.1 is a multicast address"),
    ("https://[ff02::1]/h", "ff02::1 is a multicast address"),
    ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is a cloud metadata address"),
    ("https://[fd00:ec2::254]/h", "fd00:ec2::254 is a cloud metadata address"),
    ("https://0.0.0.0/h", "0.0.0.0 is the unspecified address"),
]


async def refused_at_set(rpc: RpcClient, url: str) -> dict[str, Any]:
    """The answer to setting `url` on a new task, checking that nothing was stored."""
    task = await send(rpc, echo_message("policy"))
    body = await rpc.call(
        "tasks/pushNotificationConfig/set",
        {"taskId": task["id"], "pushNotificationConfig": {"url": url}},
        8,
    )
    listed = await rpc.call("tasks/pushNotificationConfig/list", {"id": task["id"]})
    assert listed["result"] == []
    return body


def invalid(message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 8, "error": {"code": -32602, "message": message}}


@pytest.mark.parametrize(("url", "reason"), REFUSED_AT_SET)
async def test_webhook_policy_refuses_address_at_set(rpc: RpcClient, url: str, reason: str) -> None:
    assert await refused_at_set(rpc, url) == invalid(
        f"Invalid parameters: pushNotificationConfig.url: {reason}; {POLICY_HINT}"
    )


async def test_webhook_policy_refuses_host_resolving_to_loopback_at_set(rpc: RpcClient) -> None:
    first = (await system_resolver("localhost", 443))[0]
    kind = "loopback"
    assert await refused_at_set(rpc, "https://localhost/h") == invalid(
        f"Invalid parameters: pushNotificationConfig.url: {first} (from 'localhost') is a {kind} "
        f"address; {POLICY_HINT}"
    )


async def test_webhook_policy_refuses_plain_http_at_set(rpc: RpcClient) -> None:
    assert await refused_at_set(rpc, "http://hooks.example.com/") == invalid(
        "Invalid parameters: pushNotificationConfig.url: scheme 'http' is not allowed; "
        "the webhook policy requires https (A2A_PUSH_ALLOW_HTTP admits http)"
    )


async def test_message_send_refused_push_config_starts_no_task(
    rpc: RpcClient, redis: Redis
) -> None:
    message = echo_message("never")
    body = await rpc.call(
        "message/send",
        {
            "message": message,
            "configuration": {"pushNotificationConfig": {"url": "https://10.0.0.1/"}},
        },
        8,
    )
    assert body == invalid(
        f"Invalid parameters: pushNotificationConfig.url: 10.0.0.1 is a private address; {POLICY_HINT}"
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"id": "a/b"},
            "pushNotificationConfig.id must be 1 to 128 letters, digits, '-', '_' or '.', got 'a/b'",
        ),
        (
            {"token": "line\nbreak"},
            "pushNotificationConfig.token must be printable ASCII: it travels in an HTTP header",
        ),
        (
            {"authentication": {"schemes": ["Bearer"], "credentials": "é"}},
            "pushNotificationConfig.authentication.credentials must be printable ASCII: "
            "it travels in an HTTP header",
        ),
    ],
)
async def test_config_fields_no_header_can_carry_refused_at_set(
    rpc: RpcClient, config: dict[str, Any], message: str
) -> None:
    task = await send(rpc, echo_message("fields"))
    hook = {"url": "https://hooks.example.com/", **config}
    body = await rpc.call(
        "tasks/pushNotificationConfig/set",
        {"taskId": task["id"], "pushNotificationConfig": hook},
        8,
    )
    assert body == invalid(message)


async def test_unsupported_authentication_scheme_refused_at_set(push_rpc: RpcClient) -> None:
    task = await send(push_rpc, echo_message("auth"))
    config = {
        "url": "https://hooks.example.com/",
        "authentication": {"schemes": ["Digest"], "credentials": "x"},
    }
    body = await push_rpc.call(
        "tasks/pushNotificationConfig/set",
        {"taskId": task["id"], "pushNotificationConfig": config},
        8,
    )
    assert body == invalid(
        "pushNotificationConfig.authentication.schemes ['Digest'] names no scheme this gateway "
        "can send; supported: Bearer, Basic"
    )


REFUSED_AT_DELIVERY = [
    "127.0.0.2",
    "::1",
    "::ffff:10.0.0.7",
    "10.0.0.7",
    "172.16.5.4",
    "fd12::7",
    "169.254.3.3",
    "fe80::7",
    "100.100.0.7",
    "239.1.2.3",
    "ff05::7",
    "169.254.169.254",
    "0.0.0.0",
]


@pytest.mark.parametrize("address", REFUSED_AT_DELIVERY)
async def test_host_rebound_to_refused_address_refused_at_delivery(
    push_rpc: RpcClient,
    temporal_client: Client,
    gateway_dns: Resolver,
    worker_dns: Resolver,
    counted: Counted,
    address: str,
) -> None:
    """The host resolved to a public address at `set`, and resolves to `address` at delivery (the
    push worker's allowlist admits 127.0.0.1 only, hence 127.0.0.2 for loopback)."""
    host = f"rebind-{uuid.uuid4().hex[:8]}.test"
    gateway_dns.hosts[host] = [PUBLIC]
    worker_dns.hosts[host] = [address]
    async with receiver() as hook:
        url = f"http://{host}:{hook.port}/hook"
        task = await send(push_rpc, echo_message("rebind"), pushNotificationConfig={"url": url})
        await finished(temporal_client, task["id"])
        assert hook.received == []
    assert counted() == Counter({"refused": 1})


async def test_config_from_a_1_0_client_gets_stream_response_bodies(
    push_rpc: RpcClient, temporal_client: Client, counted: Counted
) -> None:
    """A2A 1.0 §4.3.3: the notification is a StreamResponse; this one carries the task."""
    async with receiver() as hook:
        message = {"role": "ROLE_USER", "parts": [{"text": "hi"}], "messageId": "v1-push"}
        response = await push_rpc.http.post(
            "/",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "SendMessage",
                "params": {
                    "message": message,
                    "configuration": {"taskPushNotificationConfig": {"url": hook.url}},
                },
            },
            headers={"A2A-Version": "1.0"},
        )
        task = response.json()["result"]["task"]
        await finished(temporal_client, task["id"])
        [request] = hook.received
        body = request.json()
        assert_valid_v1(body, "StreamResponse")
        assert body == {"task": task}
    assert counted() == Counter({"delivered": 1})
