"""The response reader of the load generators (`bench.stream_clients`, `bench.soak_clients`), fed the
bytes a raw socket receives: an HTTP/1.1 response head, its chunked body, the SSE events in it. Minimal,
for the gateway's own streams (LF line ends, one `data:` line an event): httpx and httpx-sse would need
more CPU than the gateway the load generators measure."""

from __future__ import annotations

# Bytes of a response head we accept before calling the response malformed.
MAX_HEAD = 16 * 1024


def split_head(pending: bytearray, data: bytes) -> tuple[bytes, bytes] | None:
    """Feed `data` of a response until its head is whole: then the head (lower case) and the bytes
    after it; None until then (`pending` keeps what came)."""
    pending += data
    end = pending.find(b"\r\n\r\n")
    if end < 0:
        return None
    return bytes(pending[:end]).lower(), bytes(pending[end + 4 :])


def sse_fields(block: bytes) -> tuple[bytes, bytes]:
    """The `id` and the `data` of one SSE event (its lines without the blank line ending it)."""
    entry_id = b""
    data = b""
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            data += line[5:].lstrip(b" ")
        elif line.startswith(b"id:"):
            entry_id = line[3:].strip()
    return entry_id, data


def sse_blocks(raw: bytearray, sse: bytearray, data: bytes) -> tuple[list[bytes], bool]:
    """Feed `data` of a chunked response body: the SSE blocks (text between blank lines) now
    complete, and whether the body has ended. `raw` keeps an incomplete chunk, `sse` an incomplete
    block, between calls."""
    raw += data
    position = 0
    ended = False
    while True:
        line_end = raw.find(b"\r\n", position)
        if line_end < 0:
            break
        size = int(raw[position:line_end].split(b";", 1)[0], 16)
        stop = line_end + 2 + size
        if len(raw) < stop + 2:
            break  # wait for the whole chunk and its CRLF
        if size == 0:
            ended = True
            position = stop + 2
            break
        sse += raw[line_end + 2 : stop]
        position = stop + 2
    if position:
        del raw[:position]
    blocks = []
    start = 0
    while True:
        end = sse.find(b"\n\n", start)
        if end < 0:
            break
        blocks.append(bytes(sse[start:end]))
        start = end + 2
    if start:
        del sse[:start]
    return blocks, ended
