"""Records the gateway's calls off the hot path: a bounded queue, one writer thread.

A call hands its record to `offer`, which never blocks: when the queue is full the record is dropped
and counted (health and metrics say so), and the call is answered all the same. The writer appends
what is queued as one batch every `interval` seconds or as soon as `batch` records wait, whichever
comes first, and everything on `stop`. A batch that fails to append (the store is down) is kept as
it is and tried again: its id derives from its call ids, so a retry never counts a call twice.

Its counters (calls in flight, records accepted, written, dropped) are mirrored into a journal on
every change. A process killed with `kill -9` loses what it had queued and not written, at most one
interval's worth, and the calls it was answering; the next process on the same store reads the dead
process's counters and reports how many (`lost_at_last_stop`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from domain.gateway_calls import GatewayCall

log = logging.getLogger(__name__)


class Journal(Protocol):
    """Where a recorder mirrors its counters, and finds those of recorders that died."""

    def open(self) -> None: ...

    def mirror(self, in_flight: int, accepted: int, recorded: int, dropped: int) -> None: ...

    def orphans(self) -> list[dict[str, Any]]:
        """The counters of recorders whose process is gone, each with `lost` (each read once)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RecorderStats:
    queued: int
    in_flight: int
    recorded: int
    dropped: int
    capacity: int
    failed_writes: int
    last_error: str | None
    lost_at_last_stop: int


class CallRecorder:
    def __init__(
        self,
        write: Callable[[Sequence[GatewayCall]], Any],
        *,
        capacity: int = 100_000,
        batch: int = 1_000,
        interval: float = 0.25,
        journal: Journal | None = None,
    ) -> None:
        self._write, self.capacity, self.batch, self.interval = write, capacity, batch, interval
        self._queue: deque[GatewayCall] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: list[GatewayCall] = []  # a batch whose write failed, retried as it is
        self._writing = threading.Lock()
        self._journal = journal
        self.in_flight = 0
        self._idle = threading.Condition()
        self._mirroring = threading.Lock()
        self.accepted = self.recorded = self.dropped = self.failed_writes = 0
        self.last_error: str | None = None
        self.lost_at_last_stop = 0

    # ------------------------------------------------------------- the hot path (the event loop)

    def begin(self) -> None:
        """A call started: it is in flight until its record is offered."""
        self.in_flight += 1
        self._mirror()

    def offer(self, call: GatewayCall) -> bool:
        """Queues a call's record; False (counted as dropped) when the queue is full. Never blocks."""
        self.in_flight -= 1
        if len(self._queue) >= self.capacity:
            self.dropped += 1
            queued = False
        else:
            self._queue.append(call)
            self.accepted += 1
            queued = True
            if len(self._queue) >= self.batch:
                self._wake.set()
        self._mirror()
        if not self.in_flight:
            with self._idle:
                self._idle.notify_all()
        return queued

    def _mirror(self) -> None:
        if self._journal is not None:
            with self._mirroring:  # two threads change the counters: one consistent copy at a time
                self._journal.mirror(self.in_flight, self.accepted, self.recorded, self.dropped)

    # ------------------------------------------------------------- the writer thread

    def start(self) -> None:
        if self._journal is not None:
            dead = self._journal.orphans()
            self.lost_at_last_stop = sum(o["lost"] for o in dead)
            for o in dead:
                log.warning(
                    "gateway: the process %s stopped without writing %s call record(s) (%s in flight, %s queued); "
                    "they are lost", o["pid"], o["lost"], o["in_flight"], o["lost"] - o["in_flight"],
                )  # fmt: skip
            self._journal.open()
        self._thread = threading.Thread(target=self._run, name="gateway-recorder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Writes everything queued, then stops the writer."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._journal is not None:
            self._journal.close()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Waits until no call is being answered (tests: every answered call has offered its record)."""
        with self._idle:
            return self._idle.wait_for(lambda: self.in_flight == 0, timeout)

    def flush(self) -> None:
        """Writes what is queued now, in this thread (tests, and the writer itself)."""
        with self._writing:
            self._flush()

    def _flush(self) -> None:
        while self._pending or self._queue:
            if not self._pending:
                take = min(self.batch, len(self._queue))
                self._pending = [self._queue.popleft() for _ in range(take)]
            self._write(self._pending)
            self.recorded += len(self._pending)
            self._pending = []
            self._mirror()

    def _run(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            started = time.monotonic()
            try:
                self.flush()
                self.last_error = None
            except Exception as e:  # the store is down: keep the batch, retry next round
                self.failed_writes += 1
                self.last_error = f"{type(e).__name__}: {str(e)[:300]}"
                log.warning("gateway: could not record %d call(s), retrying: %s", len(self._pending), self.last_error)
            if stopping:
                return
            self._wake.wait(max(0.0, self.interval - (time.monotonic() - started)))
            self._wake.clear()

    def stats(self) -> RecorderStats:
        return RecorderStats(
            queued=len(self._queue) + len(self._pending), in_flight=self.in_flight, recorded=self.recorded,
            dropped=self.dropped, capacity=self.capacity, failed_writes=self.failed_writes,
            last_error=self.last_error, lost_at_last_stop=self.lost_at_last_stop,
        )  # fmt: skip
