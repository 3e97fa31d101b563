"""A Redis server killed under a stream, as the cluster and Sentinel tests do it: a 30-chunk echo is
streamed from one gateway, the server is killed after its fifth chunk, and once a replica has taken
over the client resumes on another gateway where its stream broke; nothing the workflow holds is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.sse import (
    Frame,
    data_frames,
    echo_message,
    read_stream,
    rpc_body,
    stream_frames,
)
from tests.integration.test_faults import as_results, progress, rpc

TEXT = "abcdefghijklmnopqrstuvwxyz0123"


async def stream_and_kill(
    client: httpx.AsyncClient, url: str, kill: Callable[[str], None]
) -> tuple[str, list[Frame]]:
    """Stream TEXT from `url`, calling `kill(task id)` after the fifth chunk: the task's id and the
    frames that arrived before the stream ended or broke."""
    message = echo_message(TEXT, chunks=len(TEXT), delay=0.2)
    frames: list[Frame] = []
    task_id: str | None = None
    async with (
        asyncio.timeout(60),
        client.stream(
            "POST", url, json=rpc_body("message/stream", {"message": message})
        ) as response,
    ):
        try:
            async for frame in stream_frames(response):
                frames.append(frame)
                if task_id is None and len(progress(as_results(frames))) == 5:
                    task_id = frames[0].data["result"]["id"]
                    kill(task_id)
        except httpx.RemoteProtocolError:
            pass
    assert task_id is not None
    return task_id, frames


async def resume_and_check(
    client: httpx.AsyncClient, url: str, task_id: str, frames: list[Frame]
) -> None:
    """Resume the stream on `url` after its last event if it broke, then check that it ended
    completed, that the text after the last restart of the artifact is TEXT, and that tasks/get has
    the task completed with TEXT."""
    results: list[dict[str, Any]] = as_results(frames)
    if not results or results[-1].get("final") is not True:
        last_id = [frame.id for frame in frames if frame.id][-1]
        resumed = await read_stream(
            client,
            "POST",
            url,
            json=rpc_body("tasks/resubscribe", {"id": task_id}),
            headers={"Last-Event-ID": last_id},
        )
        results += [frame.data["result"] for frame in data_frames(resumed)]
    assert (results[-1]["kind"], results[-1]["status"]["state"]) == ("status-update", "completed")
    chunks = progress(results)
    restart = max(i for i, (append, _) in enumerate(chunks) if not append)
    assert "".join(chunk for _, chunk in chunks[restart:]) == TEXT
    task = (await rpc(client, url, "tasks/get", {"id": task_id}))["result"]
    assert task["status"]["state"] == "completed"
    assert "".join(p["text"] for p in task["artifacts"][0]["parts"]) == TEXT
