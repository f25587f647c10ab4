"""Admission control: a cap on running sequences, a bounded wait queue (429 beyond it), and the shutdown drain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from openchat_hf.serving.errors import ServingError, shutting_down

ABORT = object()  # put into every running request's queue when the drain grace is over


class Ticket:
    """Places reserved for one request's ``n`` sequences; unused places are given back when it is dropped."""

    def __init__(self, admission: Admission, n: int) -> None:
        self.admission = admission
        self.unused = n

    def release_unused(self) -> None:
        self.admission.waiting -= self.unused
        self.unused = 0

    def __del__(self) -> None:  # a response that never started (client gone before the first byte)
        if self.unused:
            self.release_unused()


class Admission:
    """At most ``max_running`` sequences generate at once and ``max_waiting`` wait (in arrival order) for a place.

    :meth:`reserve` is called before a response starts (so a full queue is a clean 429 with ``Retry-After``, and a
    server that is shutting down answers 503); each sequence then holds a place through :meth:`slot`.
    """

    def __init__(self, max_running: int, max_waiting: int) -> None:
        if max_running < 1 or max_waiting < 0:
            raise ServingError("--max-batch-size must be at least 1 and --max-queue at least 0.")
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.running = 0
        self.waiting = 0
        self.draining = False
        self._slots: asyncio.Semaphore | None = None
        self._listeners: set[asyncio.Queue] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called at startup from the serving event loop."""
        self._loop = loop
        self._slots = asyncio.Semaphore(self.max_running)

    def reserve(self, n: int) -> Ticket:
        if self.draining:
            raise shutting_down()
        if n > self.max_running + self.max_waiting:
            raise ServingError(
                f"n={n} is more than this server runs and queues at once ({self.max_running + self.max_waiting}).",
                param="n",
                code="invalid_value",
            )
        if self.running + self.waiting + n > self.max_running + self.max_waiting:
            raise ServingError(
                f"The server is busy ({self.running} sequences running, {self.waiting} waiting); retry shortly.",
                status=429,
                type="server_overloaded",
                code="server_overloaded",
                headers={"Retry-After": "1"},
            )
        self.waiting += n
        return Ticket(self, n)

    @asynccontextmanager
    async def slot(self, ticket: Ticket) -> AsyncIterator[None]:
        """Hold a running place for one of the ticket's sequences (waiting for one first if the batch is full)."""
        if self._slots is None:
            self.bind(asyncio.get_running_loop())
        assert self._slots is not None
        try:
            await self._slots.acquire()
        finally:
            ticket.unused -= 1
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()

    # ------------------------------------------------------------------------------------------- shutdown
    def listen(self, queue: asyncio.Queue) -> None:
        self._listeners.add(queue)

    def forget(self, queue: asyncio.Queue) -> None:
        self._listeners.discard(queue)

    def begin_drain(self, grace: float) -> None:
        """Refuse new requests now and end the running ones after ``grace`` seconds (safe from any thread)."""
        if self._loop is None or self._loop.is_closed():
            self.draining = True
            return
        self._loop.call_soon_threadsafe(self._drain, grace)

    def _drain(self, grace: float) -> None:
        if not self.draining:
            self.draining = True
            assert self._loop is not None
            self._loop.call_later(grace, self.abort)

    def abort(self) -> None:
        """End every running request now (each gets a 503 error, streams an error event and ``[DONE]``)."""
        self.draining = True
        for queue in list(self._listeners):
            queue.put_nowait((0, ABORT, None, 0))
