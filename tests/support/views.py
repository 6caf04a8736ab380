"""Every projection table, dumped in key order: two dumps are equal only if the views are identical."""

from __future__ import annotations

from typing import Any

from api.runtime import Runtime


def dump_views(runtime: Runtime) -> dict[str, list[dict[str, Any]]]:
    dumps = {}
    with runtime.db.read() as cur:
        for projection in runtime.engine.projections.values():
            for table in projection.tables:
                rows = cur.execute(f"SELECT * FROM {table}").fetchall()
                dumps[table] = sorted(rows, key=lambda r: tuple(str(r[k]) for k in sorted(r)))
    return dumps
