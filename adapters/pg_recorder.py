"""eventsourcing's PostgreSQL application recorder, inserting without psycopg's pipeline mode.

The library pipelines its insert (lock, notify, insert). With a large batch (one
event of several megabytes: 10,000 examples or samples) that pipeline deadlocks
now and then in psycopg: client and server both wait, the backend stuck in PARSE
(the class of psycopg issue #685; seen here with psycopg 3.2.11 to 3.3.9). The
same statements run one after another in one transaction take a few more loopback
round trips and never block. Everything else is the library's own code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic, retry


class UnpipelinedApplicationRecorder(PostgresApplicationRecorder):
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
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
        return notification_ids


TOPIC = get_topic(UnpipelinedApplicationRecorder)
