"""FT_DATABASE_URL, mapped onto eventsourcing's settings and onto our own SQL access.

    sqlite:///relative/path.sqlite3     (the default: sqlite:///.ft/events.sqlite3)
    sqlite:////absolute/path.sqlite3
    postgresql://user:password@host:5432/dbname

Events, projections, tracking positions and idempotency keys all live in that
one database, so a projection can commit its view and its position together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

DEFAULT_DATABASE_URL = "sqlite:///.ft/events.sqlite3"
#: seconds a PostgreSQL request waits for a pooled connection, or to connect, before it fails (503)
DEFAULT_POOL_TIMEOUT = 5.0


class StoreConfigError(ValueError):
    """FT_DATABASE_URL cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class StoreConfig:
    url: str
    dialect: Literal["sqlite", "postgresql"]
    sqlite_path: Path | None = None
    host: str = "localhost"
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""
    pool_timeout: float = DEFAULT_POOL_TIMEOUT

    @property
    def display_url(self) -> str:
        """The URL without its password, for logs and messages."""
        if self.dialect == "sqlite":
            return self.url
        auth = f"{self.user}:***@" if self.password else (f"{self.user}@" if self.user else "")
        return f"postgresql://{auth}{self.host}:{self.port}/{self.dbname}"

    @property
    def sqlite_views_path(self) -> Path | None:
        """On SQLite, where the read models live: a file of their own beside the events
        (`events.sqlite3` -> `events.views.sqlite3`), so the projection worker's writes never
        wait for, or hold up, the single write lock of the events file. Rebuilt from the log
        if deleted."""
        if self.sqlite_path is None:
            return None
        p = self.sqlite_path
        return p.with_name(f"{p.stem}.views{p.suffix}" if p.suffix else f"{p.name}.views")

    def with_pool_timeout(self, seconds: float | None) -> StoreConfig:
        return self if seconds is None else replace(self, pool_timeout=seconds)

    def eventsourcing_env(self, *, create_table: bool) -> dict[str, str]:
        env = {"CREATE_TABLE": "y" if create_table else "n"}
        if self.dialect == "sqlite":
            assert self.sqlite_path is not None
            return env | {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": "30",
                # the library's recorder, plus the Idempotency-Key mark in the insert's transaction
                "APPLICATION_RECORDER_TOPIC": "adapters.sqlite_recorder:MarkingSQLiteRecorder",
            }
        # POSTGRES_ENABLE_DB_FUNCTIONS stays off: with it, readers may skip ids
        # that are not yet committed and tracking is dropped (GUIDE.md section 5).
        return env | {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            # Each of the six applications has a pool of its own: two connections kept open each (a
            # server and its projection worker hold about 35 at rest, within PostgreSQL's default
            # max_connections of 100), and up to 30 each under load, as before.
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "28",
            # 9.5 reads POSTGRES_CONNECT_TIMEOUT (whole seconds) as the pool's wait for a
            # connection (its default is 30 s); the recorder uses it for libpq's connect too.
            "POSTGRES_CONNECT_TIMEOUT": str(max(1, math.ceil(self.pool_timeout))),
            # a pooled connection the server dropped (restart, admin shutdown) is checked and
            # replaced before use, instead of failing the request
            "POSTGRES_PRE_PING": "y",
            # the library's recorder, minus the pipelined insert that can deadlock on large batches
            "APPLICATION_RECORDER_TOPIC": "adapters.pg_recorder:UnpipelinedApplicationRecorder",
        }

    def conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo  # psycopg loads only for a PostgreSQL store

        return make_conninfo(
            host=self.host, port=self.port, user=self.user or None, password=self.password or None,
            dbname=self.dbname, connect_timeout=connect_timeout(self.pool_timeout),
        )  # fmt: skip


def connect_timeout(pool_timeout: float) -> int:
    """libpq's connect_timeout: whole seconds, at least 2 (libpq reads 1 as 2)."""
    return max(2, math.ceil(pool_timeout))


def parse_database_url(url: str | None) -> StoreConfig:
    url = (url or DEFAULT_DATABASE_URL).strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if not url.lower().startswith("sqlite:///"):
            raise StoreConfigError(
                f"FT_DATABASE_URL {url!r} is not a SQLite file URL: use sqlite:///relative/path.sqlite3 "
                "or sqlite:////absolute/path.sqlite3."
            )
        raw = url[len("sqlite:///") :]
        if not raw or ":memory:" in raw or "mode=memory" in raw:
            raise StoreConfigError(
                "FT_DATABASE_URL must name a SQLite file (an in-memory database cannot be shared by the "
                "API, the CLI and the projection workers): for example sqlite:///.ft/events.sqlite3."
            )
        return StoreConfig(url=url, dialect="sqlite", sqlite_path=Path(unquote(raw)))
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise StoreConfigError(
                f"FT_DATABASE_URL {url!r} names no database: use postgresql://user:password@host:5432/dbname."
            )
        try:
            port = parts.port or 5432
        except ValueError:
            raise StoreConfigError(f"FT_DATABASE_URL {url!r} has an invalid port.") from None
        return StoreConfig(
            url=url,
            dialect="postgresql",
            host=parts.hostname or "localhost",
            port=port,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            dbname=dbname,
        )
    raise StoreConfigError(
        f"FT_DATABASE_URL {url!r} is not supported: use sqlite:///PATH (embedded, the default) "
        "or postgresql://user:password@host:port/dbname."
    )
