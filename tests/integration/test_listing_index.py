"""The owner's task index on a real Redis: what the publisher files (state moves, contexts, retention,
owners apart, one hash slot) and what `TaskIndex.list` reads back (order, filters, keyset paging across
equal scores, page tokens, expired snapshots, totals, Redis down)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from content import ContentStore
from redis.asyncio import Redis
from redis.crc import key_slot
from temporalio.testing import ActivityEnvironment

from gateway.devstack.processes import free_port
from gateway.tasks.listing import UNAVAILABLE, ListQuery, TaskIndex, encode_token
from protocol import (
    Artifact,
    InternalError,
    InvalidParamsError,
    Message,
    Task,
    TaskEvent,
    TaskState,
    TaskStatus,
    TextPart,
    task_snapshot_key,
    timestamp,
)
from protocol.keys import owner_context_tasks_key, owner_state_tasks_key, owner_tasks_key
from protocol.records import StatusRecord, TaskRecord
from tests.conftest import HOST, RpcClient
from tests.integration.sse import echo_message
from workers.activities import AgentTurn, TaskActivities
from workers.cancels import TurnCancels
from workers.publisher import EventPublisher, status_millis
from workflows.payloads import PublishEventInput, RunAgentInput

TTL = 3600
# Scores a little in the past, well inside the retention.
BASE = int(time.time() * 1000) - 600_000


@pytest.fixture
def publisher(redis: Redis) -> EventPublisher:
    return EventPublisher(redis, stream_max_length=100, ttl_seconds=TTL)


@pytest.fixture
def index(redis: Redis) -> TaskIndex:
    return TaskIndex(redis, timeout=5)


@pytest.fixture
def owner() -> str:
    return f"alice-{uuid.uuid4().hex[:8]}"


def at(ms: int) -> str:
    return timestamp(datetime.fromtimestamp(ms / 1000, UTC))


def tid(owner: str | None, name: str) -> str:
    """A task id of this test's own (snapshot keys are global), that sorts as `name` does."""
    return f"{owner}:{name}" if owner else name


def short(task_id: str) -> str:
    return task_id.rsplit(":", 1)[-1]


def make_task(task_id: str, context: str, state: TaskState, ms: int) -> Task:
    return Task(id=task_id, contextId=context, status=TaskStatus(state=state, timestamp=at(ms)))


async def file(
    publisher: EventPublisher,
    owner: str | None,
    task_id: str,
    *,
    ms: int,
    context: str = "ctx",
    state: TaskState = TaskState.WORKING,
) -> Task:
    task = make_task(tid(owner, task_id), context, state, ms)
    assert await publisher.publish(TaskEvent.created(task), task, owner=owner) is not None
    return task


async def scores(redis: Redis, key: str) -> list[tuple[str, int]]:
    members: Any = await redis.zrange(key, 0, -1, withscores=True)
    return [(short(member.decode()), int(score)) for member, score in members]


def ids(page_tasks: list[dict[str, object]]) -> list[str]:
    return [short(str(task["id"])) for task in page_tasks]


async def test_a_task_moves_between_state_sets_as_its_status_changes(
    redis: Redis, publisher: EventPublisher, owner: str
) -> None:
    task = await file(publisher, owner, "t1", ms=BASE, state=TaskState.SUBMITTED)
    assert await scores(redis, owner_state_tasks_key("submitted", owner)) == [("t1", BASE)]
    working = TaskStatus(state=TaskState.WORKING, timestamp=at(BASE + 5))
    await publisher.publish(TaskEvent.status_changed(task, working), task, owner=owner)
    done = task.model_copy(
        update={"status": TaskStatus(state=TaskState.COMPLETED, timestamp=at(BASE + 9))}
    )
    await publisher.publish(TaskEvent.completed(done), done, owner=owner)
    assert await scores(redis, owner_tasks_key(owner)) == [("t1", BASE + 9)]
    assert await scores(redis, owner_context_tasks_key("ctx", owner)) == [("t1", BASE + 9)]
    assert await scores(redis, owner_state_tasks_key("completed", owner)) == [("t1", BASE + 9)]
    assert (
        await redis.exists(
            owner_state_tasks_key("submitted", owner), owner_state_tasks_key("working", owner)
        )
        == 0
    )
    for key in (owner_tasks_key(owner), owner_state_tasks_key("completed", owner)):
        assert TTL - 5 <= await redis.ttl(key) <= TTL


async def test_artifact_chunks_and_repeated_creations_leave_the_index_alone(
    redis: Redis, publisher: EventPublisher, owner: str
) -> None:
    task = await file(publisher, owner, "t1", ms=BASE)
    chunk = Artifact(artifactId="a", parts=[TextPart(text="x")])
    later = make_task(task.id, "ctx", TaskState.COMPLETED, BASE + 50)
    await publisher.publish(
        TaskEvent.progress(later, chunk, append=False, last_chunk=True), later, owner=owner
    )
    assert (
        await publisher.publish(TaskEvent.created(later), later, only_if_new=True, owner=owner)
        is None
    )
    assert await scores(redis, owner_tasks_key(owner)) == [("t1", BASE)]
    assert await scores(redis, owner_state_tasks_key("working", owner)) == [("t1", BASE)]
    assert await redis.exists(owner_state_tasks_key("completed", owner)) == 0


async def test_the_retention_trims_members_older_than_it(
    redis: Redis, publisher: EventPublisher, owner: str
) -> None:
    now = int(time.time() * 1000)
    await file(publisher, owner, "ancient", ms=now - (TTL + 60) * 1000)
    await file(publisher, owner, "recent", ms=now - 1000)
    assert await scores(redis, owner_tasks_key(owner)) == [("recent", now - 1000)]
    assert await scores(redis, owner_state_tasks_key("working", owner)) == [("recent", now - 1000)]


async def test_owners_keep_indexes_apart_each_in_one_slot(
    redis: Redis, publisher: EventPublisher, owner: str
) -> None:
    await file(publisher, owner, "mine", ms=BASE)
    await file(publisher, f"{owner}-other", "theirs", ms=BASE)
    assert await scores(redis, owner_tasks_key(owner)) == [("mine", BASE)]
    assert await scores(redis, owner_tasks_key(f"{owner}-other")) == [("theirs", BASE)]
    for who in (owner, None):
        keys = [
            owner_tasks_key(who),
            owner_context_tasks_key("some:{ctx}", who),
            *(owner_state_tasks_key(state.value, who) for state in TaskState),
        ]
        assert len({key_slot(key.encode()) for key in keys}) == 1
    assert owner_tasks_key(None) == "a2a:tasks:{-}:all"
    assert owner_tasks_key("bob") == "a2a:tasks:{3:bob/}:all"


async def test_a_turn_and_the_publish_activity_file_the_task_under_its_owner(
    redis: Redis, publisher: EventPublisher, owner: str
) -> None:
    user = Message(role="user", parts=[TextPart(text="hi")], messageId="m1")
    contents = ContentStore(redis, ttl_seconds=60)
    task_id = tid(owner, "turn")
    record = TaskRecord(
        id=task_id,
        contextId="ctx",
        status=StatusRecord(state=TaskState.SUBMITTED, timestamp=at(BASE)),
        history=[await contents.put_message(task_id, user)],
    )
    working = TaskStatus(state=TaskState.WORKING, timestamp=at(BASE + 1))
    turn = AgentTurn(
        publisher,
        contents,
        RunAgentInput(
            agent="echo",
            owner=owner,
            task=record,
            working=working,
            artifact_id="a",
            first_turn=True,
        ),
        await contents.task(record),
    )
    await ActivityEnvironment().run(turn.start)
    assert await scores(redis, owner_tasks_key(owner)) == [("turn", BASE + 1)]
    assert await scores(redis, owner_state_tasks_key("working", owner)) == [("turn", BASE + 1)]
    canceled = TaskStatus(state=TaskState.CANCELED, timestamp=at(BASE + 2))
    await ActivityEnvironment().run(
        TaskActivities(publisher, contents, {}, TurnCancels(redis)).publish_event,
        PublishEventInput(
            task=record.with_status(StatusRecord.of(working)), status=canceled, owner=owner
        ),
    )
    assert await scores(redis, owner_state_tasks_key("canceled", owner)) == [("turn", BASE + 2)]
    assert await scores(redis, owner_context_tasks_key("ctx", owner)) == [("turn", BASE + 2)]
    assert await redis.exists(owner_state_tasks_key("working", owner)) == 0


def test_status_timestamps_become_epoch_milliseconds() -> None:
    assert status_millis("2025-01-02T03:04:05.678Z") == 1735787045678
    assert status_millis("2025-01-02T03:04:05.678") == 1735787045678
    assert status_millis("2025-01-02T04:04:05.678+01:00") == 1735787045678
    before = int(time.time() * 1000)
    assert before <= status_millis(None) <= before + 1000
    assert before <= status_millis("yesterday") <= before + 1000


async def test_newest_status_first_with_the_total(
    publisher: EventPublisher, index: TaskIndex, owner: str
) -> None:
    for number in range(5):
        await file(publisher, owner, f"t{number}", ms=BASE + number * 10)
    page = await index.list(owner, ListQuery())
    assert ids(page.tasks) == ["t4", "t3", "t2", "t1", "t0"]
    assert (
        page.tasks[0] == make_task(tid(owner, "t4"), "ctx", TaskState.WORKING, BASE + 40).to_wire()
    )
    assert (page.next_page_token, page.total_size) == ("", 5)
    assert (await index.list(f"{owner}-nobody", ListQuery())).total_size == 0


async def test_filters_by_state_context_both_and_time(
    publisher: EventPublisher, index: TaskIndex, owner: str
) -> None:
    await file(publisher, owner, "a", ms=BASE + 1, context="c1", state=TaskState.WORKING)
    await file(publisher, owner, "b", ms=BASE + 2, context="c2", state=TaskState.COMPLETED)
    await file(publisher, owner, "c", ms=BASE + 3, context="c1", state=TaskState.COMPLETED)
    await file(publisher, owner, "d", ms=BASE + 4, context="c1", state=TaskState.WORKING)

    async def listed(**filters: object) -> tuple[list[str], int]:
        page = await index.list(owner, ListQuery(**filters))  # type: ignore[arg-type]
        return ids(page.tasks), page.total_size

    assert await listed(state="completed") == (["c", "b"], 2)
    assert await listed(context_id="c1") == (["d", "c", "a"], 3)
    assert await listed(context_id="c1", state="working") == (["d", "a"], 2)
    assert await listed(context_id="c2", state="working") == ([], 0)
    assert await listed(status_after_ms=BASE + 2) == (["d", "c"], 2)
    assert await listed(context_id="c1", status_after_ms=BASE + 1) == (["d", "c"], 2)
    assert await listed(state="no-such-state") == ([], 0)


async def test_pages_follow_each_other_across_equal_scores(
    publisher: EventPublisher, index: TaskIndex, owner: str
) -> None:
    # Seven tasks share one timestamp: the order among them is by id, descending.
    for name in ["a", "b", "c", "d", "e", "f", "g"]:
        await file(publisher, owner, name, ms=BASE + 5)
    await file(publisher, owner, "new", ms=BASE + 9)
    await file(publisher, owner, "old", ms=BASE)
    pages, token = [], None
    while True:
        page = await index.list(owner, ListQuery(page_size=3, page_token=token))
        pages.append(ids(page.tasks))
        assert page.total_size == 9
        if not page.next_page_token:
            break
        token = page.next_page_token
    assert pages == [["new", "g", "f"], ["e", "d", "c"], ["b", "a", "old"]]


async def test_a_page_continues_after_its_cursor_even_when_that_task_moved_on(
    publisher: EventPublisher, index: TaskIndex, owner: str
) -> None:
    for name in ["a", "b", "c", "d"]:
        await file(publisher, owner, name, ms=BASE + 5)
    first = await index.list(owner, ListQuery(page_size=2))
    assert ids(first.tasks) == ["d", "c"]
    # The cursor's task gets a newer status; the next page still starts where the first ended.
    await file(publisher, owner, "c", ms=BASE + 20, state=TaskState.COMPLETED)
    second = await index.list(owner, ListQuery(page_size=2, page_token=first.next_page_token))
    assert (ids(second.tasks), second.next_page_token) == (["b", "a"], "")
    # A token of a task the index never held works the same way: a position, nothing more.
    forged = await index.list(owner, ListQuery(page_token=encode_token(BASE + 5, tid(owner, "bb"))))
    assert ids(forged.tasks) == ["b", "a"]


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        "e30",  # {}
        encode_token(-1, "x"),
        "eyJzIjoiMSIsImkiOiJ4In0",  # {"s":"1","i":"x"}
        "eyJzIjp0cnVlLCJpIjoieCJ9",  # {"s":true,"i":"x"}
        "W10",  # []
        "A" * 2000,
    ],
)
async def test_a_token_not_of_ours_is_invalid_params(
    index: TaskIndex, owner: str, token: str
) -> None:
    with pytest.raises(InvalidParamsError) as raised:
        await index.list(owner, ListQuery(page_token=token))
    assert raised.value.message == "Invalid parameters: pageToken is not a token of this server"


async def test_page_size_out_of_range_is_invalid_params(index: TaskIndex, owner: str) -> None:
    for size in (0, 101):
        with pytest.raises(InvalidParamsError):
            await index.list(owner, ListQuery(page_size=size))


async def test_expired_snapshots_are_skipped_dropped_and_the_page_filled(
    redis: Redis, publisher: EventPublisher, index: TaskIndex, owner: str
) -> None:
    for number in range(6):
        await file(publisher, owner, f"t{number}", ms=BASE + number)
    await redis.delete(*(task_snapshot_key(tid(owner, name)) for name in ["t5", "t3", "t2"]))
    page = await index.list(owner, ListQuery(page_size=2))
    assert (ids(page.tasks), page.total_size) == (["t4", "t1"], 3)
    assert await scores(redis, owner_tasks_key(owner)) == [
        ("t0", BASE),
        ("t1", BASE + 1),
        ("t4", BASE + 4),
    ]
    assert await scores(redis, owner_state_tasks_key("working", owner)) == [
        ("t0", BASE),
        ("t1", BASE + 1),
        ("t4", BASE + 4),
    ]
    rest = await index.list(owner, ListQuery(page_size=2, page_token=page.next_page_token))
    assert (ids(rest.tasks), rest.next_page_token, rest.total_size) == (["t0"], "", 3)


async def test_no_owner_lists_the_shared_index(publisher: EventPublisher, index: TaskIndex) -> None:
    context = f"shared-{uuid.uuid4().hex[:8]}"
    await file(publisher, None, f"{context}-t", ms=BASE, context=context)
    page = await index.list(None, ListQuery(context_id=context))
    assert (ids(page.tasks), page.total_size) == ([f"{context}-t"], 1)


async def test_redis_down_is_an_internal_error() -> None:
    down = Redis(host=HOST, port=free_port(HOST), socket_connect_timeout=1)
    try:
        with pytest.raises(InternalError) as raised:
            await TaskIndex(down, timeout=2).list("alice", ListQuery())
        assert raised.value.message == UNAVAILABLE
    finally:
        await down.aclose()


async def test_a_task_sent_through_the_gateway_is_listed_completed(
    rpc: RpcClient, index: TaskIndex
) -> None:
    body = await rpc.call("message/send", {"message": echo_message("hello")})
    task = body["result"]
    page = await index.list(None, ListQuery(context_id=task["contextId"]))
    assert (page.tasks, page.next_page_token, page.total_size) == ([task], "", 1)
    done = await index.list(None, ListQuery(context_id=task["contextId"], state="completed"))
    assert (ids(done.tasks), done.total_size) == ([task["id"]], 1)
