"""The gateway recorder's journal: one small JSON file per process, replaced after every round.

A clean stop deletes the file. A file whose process is gone is what a killed process left: its
last note says how many calls it had queued or in flight. Files are grouped by store (a hash of
the database URL, never the URL: it may hold a password), so a process reports the losses of its
own store only.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class FileJournal:
    def __init__(self, folder: Path, database_url: str, *, pid: int | None = None) -> None:
        self.folder = folder
        self.store = hashlib.sha256(database_url.encode()).hexdigest()[:16]
        self.pid = pid or os.getpid()
        self.path = folder / f"{self.store}-{self.pid}.json"

    def note(self, state: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(state | {"pid": self.pid, "noted_at": datetime.now(UTC).isoformat()}))
        os.replace(partial, self.path)

    def orphans(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.folder.glob(f"{self.store}-*.json")) if self.folder.is_dir() else []:
            pid = path.stem.rpartition("-")[2]
            if not pid.isdigit() or int(pid) == self.pid or _alive(int(pid)):
                continue
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
            path.unlink(missing_ok=True)
        return found

    def close(self) -> None:
        self.path.unlink(missing_ok=True)
