"""The frames a WebSocket has yet to send, bounded in count and bytes."""

from __future__ import annotations

import asyncio
import collections


class Outbox:
    """The frames waiting for the socket's one writer: at most `max_frames`, and `max_bytes` in all
    unless a frame is bigger alone (then it waits for an empty outbox). Frames are queued in the order
    they are offered, so a big one is not overtaken by smaller ones."""

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        self._frames: collections.deque[tuple[str, int]] = collections.deque()
        self._bytes = 0
        self._turn = asyncio.Lock()
        self._changed = asyncio.Condition()

    async def put(self, frame: bytes) -> None:
        size = len(frame)
        async with self._turn, self._changed:
            await self._changed.wait_for(lambda: self._has_room(size))
            self._frames.append((frame.decode(), size))
            self._bytes += size
            self._changed.notify_all()

    async def get(self) -> str:
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._frames))
            frame, size = self._frames.popleft()
            self._bytes -= size
            self._changed.notify_all()
        return frame

    def _has_room(self, size: int) -> bool:
        if not self._frames:
            return True
        return len(self._frames) < self._max_frames and self._bytes + size <= self._max_bytes
