"""Records the gateway's calls off the hot path: a bounded queue, one writer thread.

A call hands its record to `offer`, which never blocks: when the queue is full the record is dropped
and counted (health and metrics say so), and the call is answered all the same. The writer appends
what is queued as one batch every `interval` seconds or as soon as `batch` records wait, whichever
comes first, and everything on `stop`. A batch that fails to append (the store is down) is kept as
it is and tried again: its id derives from its call ids, so a retry never counts a call twice.

After each round the writer notes in a journal how many calls are queued or still being answered.
A process killed with `kill -9` loses those (and at most one interval's arrivals after the note);
the next process to open the same journal reports how many (`lost_at_last_stop`).
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
    """Where a recorder notes its pending calls, and finds those of recorders that died."""

    def note(self, state: dict[str, Any]) -> None: ...

    def orphans(self) -> list[dict[str, Any]]:
        """The last notes of recorders whose process is gone (each read once)."""
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
        self._noted: dict[str, int] | None = None
        self.in_flight = 0
        self._idle = threading.Condition()
        self.recorded = self.dropped = self.failed_writes = 0
        self.last_error: str | None = None
        self.lost_at_last_stop = 0

    # ------------------------------------------------------------- the hot path (the event loop)

    def begin(self) -> None:
        """A call started: it is in flight until its record is offered."""
        self.in_flight += 1

    def offer(self, call: GatewayCall) -> bool:
        """Queues a call's record; False (counted as dropped) when the queue is full. Never blocks."""
        self.in_flight -= 1
        if not self.in_flight:
            with self._idle:
                self._idle.notify_all()
        if len(self._queue) >= self.capacity:
            self.dropped += 1
            return False
        self._queue.append(call)
        if len(self._queue) >= self.batch:
            self._wake.set()
        return True

    # ------------------------------------------------------------- the writer thread

    def start(self) -> None:
        if self._journal is not None:
            lost = [o for o in self._journal.orphans()]
            self.lost_at_last_stop = sum(int(o.get("pending", 0)) for o in lost)
            for o in lost:
                log.warning(
                    "gateway: the process %s stopped without flushing %s call record(s) (queued or in flight at "
                    "its last note, %s); they are lost", o.get("pid"), o.get("pending"), o.get("noted_at"),
                )  # fmt: skip
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
            self._note()
            if stopping:
                return
            self._wake.wait(max(0.0, self.interval - (time.monotonic() - started)))
            self._wake.clear()

    def _note(self) -> None:
        state = {"pending": self.pending, "recorded": self.recorded, "dropped": self.dropped}
        if self._journal is None or state == self._noted:  # an idle gateway writes nothing
            return
        try:
            self._journal.note(state)
            self._noted = state
        except OSError as e:
            log.warning("gateway: could not write the recorder's journal: %s", e)

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._pending) + self.in_flight

    def stats(self) -> RecorderStats:
        return RecorderStats(
            queued=len(self._queue) + len(self._pending), in_flight=self.in_flight, recorded=self.recorded,
            dropped=self.dropped, capacity=self.capacity, failed_writes=self.failed_writes,
            last_error=self.last_error, lost_at_last_stop=self.lost_at_last_stop,
        )  # fmt: skip
