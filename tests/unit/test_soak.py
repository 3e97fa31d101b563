from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson

from bench.soak import cancel_figures, event_figures, rss_bound_kib, trend_mib_per_minute
from bench.soak_clients import Soak, SoakStream, parse_piece, piece, task_text
from bench.sse import sse_blocks, sse_fields
from workers.agents.echo import split_text

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def test_task_text_echo_split_gives_the_pieces_in_order() -> None:
    assert split_text(task_text(7, 3), 3) == [
        "[0000007:0000]",
        "[0000007:0001]",
        "[0000007:0002]",
    ]


def test_parse_piece_of_a_piece_and_of_other_text() -> None:
    assert parse_piece(piece(1_234_567, 42)) == (1_234_567, 42)
    assert parse_piece("[0000007:0001][0000007:0002]") is None
    assert parse_piece("[000000x:0001]") is None


def test_rss_bound_kib_is_a_quarter_more_plus_20_mib() -> None:
    assert rss_bound_kib(100 * 1024) == 145 * 1024


def test_trend_mib_per_minute_of_steady_growth_and_of_one_point() -> None:
    points = [(0.0, 100 * 1024), (10.0, 101 * 1024), (20.0, 102 * 1024)]
    assert trend_mib_per_minute(points) == 6.0
    assert trend_mib_per_minute(points[:1]) is None


def test_event_figures_stream_without_final_counts_its_missing_events_as_lost() -> None:
    clients: dict[str, Any] = {
        "chunks": 3,
        "tasks": [["a", 3], ["b", 2]],
        "chunks_received": 5,
        "finals": 1,
        "final_streams": 1,
    }
    figures = event_figures(clients)
    assert (figures["expected"], figures["received"], figures["lost"]) == (8, 6, 2)
    assert (figures["chunks_lost"], figures["finals_missing"]) == (1, 1)


def test_cancel_figures_take_quantiles_of_the_good_probes_and_count_the_others() -> None:
    probes: list[list[Any]] = [
        [40.0, 90.0, None],
        [60.0, 110.0, None],
        [float("nan"), 5.0, "final frames []"],
    ]
    assert cancel_figures(probes) == {
        "probes": 3,
        "failed": 1,
        "problems": {"final frames []": 1},
        "to_final_frame": {"n": 2, "p50": 50.0, "p99": 59.8, "max": 60.0},
        "to_answer": {"n": 2, "p50": 100.0, "p99": 109.8, "max": 110.0},
    }


def test_sse_blocks_fed_byte_by_byte_give_each_event_then_the_end_of_the_body() -> None:
    events = b": keep-alive\n\nid: 1-0\ndata: {}\n\n"
    # Two chunks, the first ending inside the comment, then the last (empty) chunk.
    first, second = events[:5], events[5:]
    body = b"5\r\n" + first + b"\r\n" + f"{len(second):x}\r\n".encode() + second + b"\r\n0\r\n\r\n"
    raw, pending = bytearray(), bytearray()
    blocks: list[bytes] = []
    ends: list[bool] = []
    for offset in range(len(body)):
        new, ended = sse_blocks(raw, pending, body[offset : offset + 1])
        blocks += new
        ends.append(ended)
    assert [sse_fields(block) for block in blocks] == [(b"", b""), (b"1-0", b"{}")]
    assert ends == [False] * (len(body) - 1) + [True]


def sse(index: int, result: dict[str, Any], entry_id: str = "1700000000000-0") -> bytes:
    data = orjson.dumps({"jsonrpc": "2.0", "id": index, "result": result})
    event = b"id: " + entry_id.encode() + b"\ndata: " + data + b"\n\n"
    return f"{len(event):x}\r\n".encode() + event + b"\r\n"


def chunk(index: int, number: int, chunks: int, *, append: bool | None = None) -> dict[str, Any]:
    return {
        "taskId": "t",
        "artifact": {"artifactId": "a", "parts": [{"kind": "text", "text": piece(index, number)}]},
        "append": number > 0 if append is None else append,
        "lastChunk": number == chunks - 1,
        "kind": "artifact-update",
    }


def response(index: int, chunks: list[dict[str, Any]]) -> bytes:
    frames = [
        {"id": "t", "contextId": "c", "status": {"state": "submitted"}, "kind": "task"},
        *chunks,
        {"taskId": "t", "status": {"state": "completed"}, "final": True, "kind": "status-update"},
    ]
    return HEAD + b"".join(sse(index, frame) for frame in frames) + b"0\r\n\r\n"


def soak_run(chunks: int, url: str = "http://127.0.0.1:1") -> Soak:
    args = argparse.Namespace(
        url=url,
        resume=False,
        streams=1,
        chunks=chunks,
        delay=0.0,
        ramp_rate=1.0,
        stream_timeout=10.0,
        cancel_every=0.0,
    )
    return Soak(asyncio.get_running_loop(), args)


def feed(stream: SoakStream, body: bytes) -> None:
    # Byte by byte: the parser must not depend on how the network splits the response.
    for offset in range(len(body)):
        stream.data_received(body[offset : offset + 1])


async def received(body: bytes, chunks: int) -> SoakStream:
    stream = SoakStream(soak_run(chunks), 5)
    feed(stream, body)
    return stream


async def test_soak_stream_complete_response_passes_every_check() -> None:
    stream = await received(response(5, [chunk(5, n, 3) for n in range(3)]), 3)
    assert (stream.problem(), stream.distinct, stream.finals, stream.task_id) == (None, 3, 1, "t")


async def test_soak_stream_missing_chunk_is_reported() -> None:
    stream = await received(response(5, [chunk(5, 0, 3), chunk(5, 2, 3)]), 3)
    assert stream.problem() == "1 of 3 chunks missing"


async def test_soak_stream_chunk_sent_twice_is_a_duplicate() -> None:
    frames = [chunk(5, 0, 3), chunk(5, 1, 3), chunk(5, 1, 3), chunk(5, 2, 3)]
    stream = await received(response(5, frames), 3)
    assert stream.problem() == "1 chunks duplicated"


async def test_soak_stream_retried_turn_restarts_the_artifact_without_duplicates() -> None:
    frames = [chunk(5, 0, 3), chunk(5, 1, 3), *(chunk(5, n, 3) for n in range(3))]
    stream = await received(response(5, frames), 3)
    assert (stream.problem(), stream.restarts, stream.resent, stream.chunk_frames) == (
        None,
        1,
        2,
        5,
    )


async def test_soak_stream_dropped_then_resumed_on_the_next_gateway_passes_every_check() -> None:
    stream = SoakStream(soak_run(3, "http://127.0.0.1:1,http://127.0.0.1:2"), 5)
    task = {"id": "t", "contextId": "c", "status": {"state": "submitted"}, "kind": "task"}
    feed(stream, HEAD + sse(5, task, "1-0") + sse(5, chunk(5, 0, 3), "2-0"))
    stream.connection_lost(ConnectionResetError("reset"))
    assert (stream.dropped, stream.target) == (True, 1)
    stream.resume_elsewhere()
    assert (stream.target, stream.resumes, stream.error) == (0, 1, None)
    request = stream._run.request_for(stream)
    assert request.startswith(b"POST / HTTP/1.1\r\nHost: 127.0.0.1:1\r\nLast-Event-ID: 2-0\r\n")
    assert orjson.loads(request.partition(b"\r\n\r\n")[2]) == {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tasks/resubscribe",
        "params": {"id": "t"},
    }
    final = {
        "taskId": "t",
        "status": {"state": "completed"},
        "final": True,
        "kind": "status-update",
    }
    rest = [sse(5, chunk(5, n, 3), f"{n + 2}-0") for n in (1, 2)]
    feed(stream, HEAD + b"".join(rest) + sse(5, final, "5-0") + b"0\r\n\r\n")
    assert (stream.problem(), stream.distinct, stream.finals, stream.last_id) == (
        None,
        3,
        1,
        b"5-0",
    )


async def test_soak_stream_dropped_before_any_event_sends_its_message_again() -> None:
    stream = SoakStream(soak_run(3, "http://127.0.0.1:1,http://127.0.0.1:2"), 4)
    first = stream._run.request_for(stream)
    stream.connection_lost(None)
    stream.resume_elsewhere()
    again = stream._run.request_for(stream)
    assert first.startswith(b"POST / HTTP/1.1\r\nHost: 127.0.0.1:1\r\n")
    assert again.startswith(b"POST / HTTP/1.1\r\nHost: 127.0.0.1:2\r\n")
    assert first.partition(b"\r\n\r\n")[2] == again.partition(b"\r\n\r\n")[2]
