"""eventsourcing's PostgreSQL application recorder: unpipelined inserts that also mark the
request's Idempotency-Key as committed, and database failures that surface fast.

The library pipelines its insert (lock, notify, insert). With a large batch (one
event of several megabytes: 10,000 examples or samples) that pipeline deadlocks
now and then in psycopg: client and server both wait, the backend stuck in PARSE
(the class of psycopg issue #685; seen here with psycopg 3.2.11 to 3.3.9). The
same statements run one after another in one transaction take a few more loopback
round trips and never block. The mark "this key committed at position N" runs in
that transaction too (see adapters/idempotency.py).

The library retries every call 10 times on OperationalError and InterfaceError,
each try waiting up to the pool's timeout: a stopped server held requests for
minutes. Here reads try twice and an insert once. An insert is never re-sent: when
its commit fails the outcome is unknown, and re-sending a command that did commit
would record it twice; the client retries with its Idempotency-Key instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import get_topic, retry

from adapters.idempotency import mark_committed
from adapters.store import connect_timeout

_read_retry = retry((InterfaceError, OperationalError), max_attempts=2, wait=0.1)


class UnpipelinedApplicationRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        # The library passes no connect timeout to libpq: connecting to an unreachable host
        # would wait for the operating system. Use the pool's own wait (POSTGRES_CONNECT_TIMEOUT).
        pool_kwargs = datastore.pool.kwargs
        if isinstance(pool_kwargs, dict):
            pool_kwargs.setdefault("connect_timeout", connect_timeout(datastore.pool.timeout))

    # the library's reads, undecorated (functools.wraps keeps the original), under a short retry
    select_events = _read_retry(PostgresAggregateRecorder.select_events.__wrapped__)  # type: ignore
    select_notifications = _read_retry(PostgresApplicationRecorder.select_notifications.__wrapped__)  # type: ignore
    max_notification_id = _read_retry(PostgresApplicationRecorder.max_notification_id.__wrapped__)  # type: ignore

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if self.datastore.enable_db_functions:
            return super().insert_events(stored_events, **kwargs)
        notification_ids: Sequence[int] | None = None
        with self.datastore.get_connection() as conn, conn.transaction():
            with conn.cursor() as curs:
                self._insert_events(curs, stored_events, **kwargs)
            if stored_events:
                with conn.cursor() as curs:
                    self._insert_stored_events(curs, stored_events, **kwargs)
                    notification_ids = self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

                    def execute(sql: str, params: Sequence[Any]) -> int:
                        curs.execute(sql, params)
                        return curs.rowcount

                    mark_committed(execute, "%s", notification_ids or [])
        return notification_ids


TOPIC = get_topic(UnpipelinedApplicationRecorder)
