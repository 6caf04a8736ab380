"""`ft-cli datasets …`: collect examples, build (prepare) a dataset, export it, list builds and their stats."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.common import (
    DEFAULT_ACTOR,
    ActorOpt,
    Commands,
    DbOpt,
    JsonOpt,
    ReasonOpt,
    fail,
    money,
    opened,
    out,
    parse_time,
    print_json,
    table,
)
from api.cli.jsonl import import_jsonl
from domain.batches import MAX_BATCH

if TYPE_CHECKING:
    from api.runtime import Runtime

commands = Commands()


@commands.command("collect")
def collect_examples(
    file: Annotated[Path, typer.Argument(help="JSONL: one example per line", exists=True, dir_okay=False)],
    batch_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="Examples per appended batch")] = MAX_BATCH,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Import collected examples (e.g. a distillation history) from a JSONL file, with a progress bar."""
    totals = import_jsonl(file, batch_size, as_json, database_url,
                           lambda rt, batch: rt.collect_examples(batch, actor=actor), what="example")  # fmt: skip
    if as_json:
        return print_json(totals)
    skipped = f"; {totals['duplicates']:,} already collected" if totals["duplicates"] else ""
    out.print(f"Collected {totals['accepted']:,} examples from {file} in {totals['batches']} batches{skipped}.")


@commands.command("prepare")
def prepare_dataset(
    fmt: Annotated[str, typer.Option("--format", help="openai, alpaca or jsonl")] = "openai",
    min_rating: Annotated[int, typer.Option(help="Keep examples rated at least this")] = 4,
    domain: Annotated[str | None, typer.Option(help="Only this domain")] = None,
    task_type: Annotated[str | None, typer.Option(help="Only this task type")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source")] = None,
    since: Annotated[str | None, typer.Option(help="Collected from (ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option(help="Collected up to (ISO 8601)")] = None,
    target_model: Annotated[str, typer.Option(help="Tokenizer and token limit")] = "gpt-4o-mini-2024-07-18",
    train_ratio: Annotated[float, typer.Option(help="Share of examples for training")] = 0.8,
    seed: Annotated[int, typer.Option(help="Seed of the split")] = 42,
    name: Annotated[str | None, typer.Option("--name", help="Dataset id (default: from the content hash)")] = None,
    output: Annotated[Path, typer.Option(help="Where to write the train and test files")] = Path("."),
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Build a dataset from the collected examples and write its train and test files."""
    _check_format(fmt)
    with opened(database_url, fresh=False) as rt:
        # Running the same command again returns the build it made and writes its files again.
        built = rt.command(lambda: rt.builds.build(
            actor=actor, reason=reason, dataset_id=name, min_rating=min_rating, domain=domain, task_type=task_type,
            source=source, since=parse_time(since, "--since"), until=parse_time(until, "--until"),
            target_model=target_model, train_ratio=train_ratio, seed=seed, reuse_identical=True,
        ))  # fmt: skip
        dataset_id = built.build.dataset_id
        files = _write_splits(rt, dataset_id, fmt, ("train", "test"), output)
    stats = built.build.stats
    result = {"dataset_id": dataset_id, "content_hash": built.build.content_hash, "files": files,
              "existing": built.existing}  # fmt: skip
    result |= {k: stats[k] for k in ("train", "test", "rejected", "warnings")}
    if as_json:
        return print_json(result)
    again = " (built before with these settings; nothing new recorded)" if built.existing else ""
    out.print(f"Dataset {dataset_id}{again}: {stats['train']} train, {stats['test']} test, {stats['rejected']} "
              f"rejected; {stats['total_tokens']:,} tokens. Files: {files['train']}, {files['test']}.")  # fmt: skip
    for warning in stats["warnings"]:
        out.print(f"warning: {warning}")


def _check_format(fmt: str) -> None:
    if fmt not in ("openai", "alpaca", "jsonl"):
        raise fail(f"Unknown format {fmt!r}: use openai, alpaca or jsonl.")


def _write_splits(rt: Runtime, dataset_id: str, fmt: str, splits: tuple[str, ...], output: Path) -> dict[str, str]:
    """Writes each split as `<id>-<split>.<jsonl|json>` under `output`; the paths by split."""
    suffix = "json" if fmt == "alpaca" else "jsonl"
    files = {}
    try:
        output.mkdir(parents=True, exist_ok=True)
        for split in splits:
            path = output / f"{dataset_id}-{split}.{suffix}"
            path.write_bytes(rt.builds.export(dataset_id, fmt, split))
            files[split] = str(path)
    except OSError as e:
        raise fail(f"cannot write to {output}: {e.strerror}") from None
    return files


@commands.command("export")
def export_dataset(
    dataset_id: str,
    fmt: Annotated[str, typer.Option("--format", help="openai, alpaca or jsonl")] = "openai",
    split: Annotated[str | None, typer.Option(help="One file: train, test or all (default: train and test)")] = None,
    output: Annotated[Path, typer.Option(help="Folder to write the file(s) to")] = Path("."),
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Write a dataset build's files in a format, as prepare-dataset does: train and test, or one split."""
    _check_format(fmt)
    if split not in (None, "train", "test", "all"):
        raise fail(f"Unknown split {split!r}: use train, test or all.")
    with opened(database_url) as rt:
        rt.builds.get(dataset_id)  # a clear error for an unknown dataset, before any folder is made
        files = _write_splits(rt, dataset_id, fmt, ("train", "test") if split is None else (split,), output)
    if as_json:
        return print_json({"dataset_id": dataset_id, "format": fmt, "files": files})
    out.print(f"Wrote {', '.join(files.values())}.")


@commands.command("list")
def list_datasets_command(as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """Every dataset build."""
    from projections.datasets import list_datasets

    with opened(database_url) as rt:
        rows = list_datasets(rt.db, limit=100_000)
    items = [{k: r[k] for k in ("dataset_id", "train", "test", "rejected", "content_hash", "created_at", "created_by")}
             for r in rows]  # fmt: skip
    if as_json:
        return print_json(items)
    columns = ["dataset_id", "train", "test", "rejected", "created_at", "created_by"]
    table("Datasets", columns, [[r[c] for c in columns] for r in items])


@commands.command("stats")
def dataset_stats(dataset_id: str, as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """Counts, lengths in characters and tokens, estimated training costs and warnings of a dataset."""
    with opened(database_url) as rt:
        stats = rt.builds.get(dataset_id)["stats"]
    if as_json:
        return print_json(stats)
    table(f"Dataset {dataset_id}", ["examples", "train", "test", "rejected", "total tokens", "mean tokens", "p90"],
           [[stats["examples"], stats["train"], stats["test"], stats["rejected"], f"{stats['total_tokens']:,}",
             f"{stats['tokens']['mean']:.1f}", stats["tokens"]["p90"]]])  # fmt: skip
    table(
        "Estimated training cost",
        ["model", "cost"],
        [[m, money(c)] for m, c in stats["estimated_training_cost"].items()],
    )
    for warning in stats["warnings"]:
        out.print(f"warning: {warning}")
