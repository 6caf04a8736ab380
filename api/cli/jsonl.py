"""Streaming a JSONL file of any size into the store in batches, with a progress bar
(import-inferences, collect-examples, record-samples)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from api.cli.common import err, fail, opened
from domain.batches import BatchRejected

if TYPE_CHECKING:
    from api.runtime import Runtime


def import_jsonl(
    file: Path, batch_size: int, quiet: bool, database_url: str | None,
    append: Callable[[Runtime, list[Any]], Any], *, what: str,
) -> dict[str, Any]:  # fmt: skip
    """Streams a JSONL file in batches through `append`, with a progress bar. A batch with a bad line
    is rejected whole and the import stops there, listing every bad line of that batch; the batches
    before it stay recorded, and a re-run skips them as duplicates."""
    from rich.progress import Progress, TextColumn

    totals = {"file": str(file), "lines": 0, "accepted": 0, "duplicates": 0, "batches": 0, "position": None}
    with opened(database_url, fresh=False) as rt, file.open("rb") as handle:
        progress = Progress(*Progress.get_default_columns(), TextColumn("{task.fields[done]} " + what + "s"),
                            console=err.rich, disable=quiet, transient=True)  # fmt: skip
        with progress:
            task = progress.add_task(f"Importing {file.name}", total=file.stat().st_size, done=0)
            for lines, items in jsonl_batches(handle, batch_size):
                try:
                    r = append(rt, items)
                except BatchRejected as e:
                    bad = "; ".join(f"line {lines[x.index]}: {x.message}" for x in e.errors[:20])
                    more = f" (and {len(e.errors) - 20} more)" if len(e.errors) > 20 else ""
                    raise fail(
                        f"{file}: {len(e.errors)} invalid {what}(s) in the batch of lines {lines[0]}-{lines[-1]}, "
                        f"which was not recorded ({totals['accepted']} {what}s before it were): {bad}{more}"
                    ) from None
                totals["lines"] = lines[-1]
                totals["batches"] += 1
                totals["accepted"] += r.accepted
                totals["duplicates"] += len(r.duplicates)
                if r.recorded is not None:
                    totals["position"] = r.recorded.position
                progress.update(task, completed=handle.tell(), done=totals["accepted"])
    return totals


def jsonl_batches(handle: Any, size: int) -> Iterator[tuple[list[int], list[Any]]]:
    """(line numbers, parsed records) per batch; a malformed line stops with its number."""
    lines: list[int] = []
    records: list[Any] = []
    for number, raw in enumerate(handle, start=1):
        if not raw.strip():
            continue
        try:
            records.append(orjson.loads(raw))
        except orjson.JSONDecodeError as e:
            raise fail(f"line {number} is not valid JSON ({e.msg}); nothing from its batch was imported") from None
        lines.append(number)
        if len(records) == size:
            yield lines, records
            lines, records = [], []
    if records:
        yield lines, records
