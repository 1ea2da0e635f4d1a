"""Blocking work that requests ask for at the same moment, done together: each request's item
waits in the event loop while one call in the thread pool does every item that arrived
meanwhile. The one-click unsubscribes of many readers then share one write transaction and
its commit (on SQLite, one fsync), instead of queueing for the writer lock one by one, each
with its own thread hand-off.

Nothing is answered before the work is done: a request's answer is its item's result (or the
batch's exception), as if it had called the work alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool

Work = Callable[[Sequence[Any]], Sequence[Any]]  # items in, one result per item out, in order

MAX_BATCH = 100  # items per call: a bounded statement, and a bounded wait for the last in it


class Batches:
    """Items for the same work gathered while a call of it runs; one call at a time per work."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[Work, list[tuple[Any, asyncio.Future]]] = {}
        self._running: dict[Work, asyncio.Task] = {}

    async def run(self, work: Work, item: Any) -> Any:
        """`work([item, …])`'s result for `item`, `item` done with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (a test client's): nothing of the last one is left
            self._loop, self._waiting, self._running = loop, {}, {}
        future = loop.create_future()
        self._waiting.setdefault(work, []).append((item, future))
        if work not in self._running:
            self._running[work] = loop.create_task(self._drain(work))
        return await future

    async def _drain(self, work: Work) -> None:
        """Calls `work` until nothing waits for it: each call takes what arrived during the last."""
        try:
            while waiting := self._waiting.get(work):
                batch, self._waiting[work] = waiting[:MAX_BATCH], waiting[MAX_BATCH:]
                try:
                    results = await run_in_threadpool(work, [item for item, _future in batch])
                except asyncio.CancelledError:  # the server is stopping
                    for _item, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:  # noqa: BLE001 - each request answers it as its own
                    for _item, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_item, future), result in zip(batch, results, strict=True):
                    if not future.done():  # its request may have gone away; the work is done anyway
                        future.set_result(result)
        finally:
            self._running.pop(work, None)
            if not self._waiting.get(work):
                self._waiting.pop(work, None)
