"""The gateway recorder's journal: four counters per process in a memory-mapped file.

Every call updates the counters (calls in flight, records queued, written, dropped) with one store
into a shared mapping: no system call on the hot path, and the kernel keeps what was stored even
when the process is killed with kill -9 (only losing the machine itself loses it). A clean stop
deletes the file. A file whose process is gone is what a killed process left: its counters say how
many records it had not written (in flight, plus queued and not written), and the next process on
the same store reports them. Files are grouped by store (a hash of the database URL, never the URL:
it may hold a password).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
from pathlib import Path
from typing import Any

LAYOUT = struct.Struct("<4q")  # in_flight, accepted, recorded, dropped
FIELDS = ("in_flight", "accepted", "recorded", "dropped")


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
        self.path = folder / f"{self.store}-{self.pid}.counters"
        self._map: mmap.mmap | None = None

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w+b") as f:
            f.write(b"\0" * LAYOUT.size)
            f.flush()
            self._map = mmap.mmap(f.fileno(), LAYOUT.size)

    def mirror(self, in_flight: int, accepted: int, recorded: int, dropped: int) -> None:
        if self._map is not None:
            LAYOUT.pack_into(self._map, 0, in_flight, accepted, recorded, dropped)

    def orphans(self) -> list[dict[str, Any]]:
        """The counters of dead processes on this store, each with `lost`; their files are removed."""
        found = []
        for path in sorted(self.folder.glob(f"{self.store}-*.counters")) if self.folder.is_dir() else []:
            pid = path.stem.rpartition("-")[2]
            if not pid.isdigit() or int(pid) == self.pid or _alive(int(pid)):
                continue
            try:
                counters = dict(zip(FIELDS, LAYOUT.unpack(path.read_bytes()[: LAYOUT.size]), strict=True))
            except (OSError, struct.error):
                continue
            lost = counters["in_flight"] + counters["accepted"] - counters["recorded"]
            found.append(counters | {"pid": int(pid), "lost": max(0, lost)})
            path.unlink(missing_ok=True)
        return found

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        self.path.unlink(missing_ok=True)
