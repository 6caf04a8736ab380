"""`make bench`: every benchmark in one run, so the ratios compare like with like.

Writes bench/results/latest.json and the figures table in README.md (between the
bench markers). Timings vary between machines and runs: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    ab_assignment,
    ab_ingest,
    dataset_build,
    gateway,
    inference_ingest,
    live_evaluation,
    local_training,
    projection_rebuild,
    registry_vs_mlflow,
    startup,
    status_latency,
)
from bench.common import ThrowawayPostgres

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _fmt(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def default_serve_rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    ds = r.get("default_serve")
    if not ds:
        return []
    return [
        (
            f"Inference records ingested through `ft-cli serve` as `make run` starts it, {kind} "
            f"({_fmt(ds['records'])} records, batches of 10,000)",
            f"{_fmt(ds[kind]['records_per_s'])}/s (**{ds[kind]['ratio']:.2f}x** raw `insert_events` "
            f"{_fmt(ds[kind]['raw_insert_events_per_s'])} events/s); all projected at "
            f"{_fmt(ds[kind]['end_to_end_per_s'])}/s end to end (**{ds[kind]['end_to_end_ratio']:.2f}x**)",
            "≥ 0.5x raw, goal 0.8x",
        )
        for kind in ("sqlite", "postgresql")
    ]


def render(r: dict[str, Any]) -> str:
    rb, st, cmd = r["rebuild"], r["status"], r["commands"]
    lib = rb["library_runner_postgresql"]
    rows = [
        (
            "Rebuild of the deployment projection, SQLite",
            f"{_fmt(rb['sqlite']['events_per_s'])} events/s ({_fmt(rb['events'])} events)",
            "≥ 20,000 events/s",
        ),
        ("Rebuild of the deployment projection, PostgreSQL", f"{_fmt(rb['postgresql']['events_per_s'])} events/s", ""),
        (
            "eventsourcing `ProjectionRunner`, PostgreSQL (same log)",
            f"{_fmt(lib['events_per_s'])} events/s (first {_fmt(lib['events'])} events)",
            "",
        ),
        ("Ours / library runner, PostgreSQL", f"**{_fmt(rb['ratio_vs_library_runner'], 1)}x**", "≥ 10x"),
    ]
    for kind in ("sqlite", "postgresql"):
        s = st[kind]
        rows.append((
            f"Deployment status p50 over HTTP, {kind}: "
            f"{_fmt(s['small']['events'])} → {_fmt(s['large']['events'])} events",
            f"{s['small']['http_p50_ms']:.2f} → {s['large']['http_p50_ms']:.2f} ms "
            f"(**{s['http_ratio_large_to_small']:.2f}x**; in-process {s['small']['in_process_p50_ms']:.3f} → "
            f"{s['large']['in_process_p50_ms']:.3f} ms)",
            "≤ 1.5x, ≤ 2 ms",
        ))  # fmt: skip
    ml = cmd["mlflow"]
    for what, key in (("Registrations", "registrations"), ("Deploys (MLflow: alias moves)", "deploys")):
        ours = cmd["sqlite"][f"{key}_per_s"]
        rows.append((
            f"{what} over HTTP, SQLite: ours vs MLflow {ml['version']} (`--workers 1`)",
            f"{_fmt(ours)}/s vs {_fmt(ml['client'][f'{key}_per_s'], 1)}/s with MlflowClient "
            f"(**{cmd['ratios_vs_client'][key]:.1f}x**), {_fmt(ml['rest'][f'{key}_per_s'], 1)}/s with raw REST "
            f"(**{cmd['ratios_vs_rest'][key]:.1f}x**)",
            "≥ 5x",
        ))  # fmt: skip
    rows.append((
        "Registrations / deploys over HTTP, PostgreSQL",
        f"{_fmt(cmd['postgresql']['registrations_per_s'])}/s / {_fmt(cmd['postgresql']['deploys_per_s'])}/s", "",
    ))  # fmt: skip
    ing = r.get("ingest")
    if ing:
        for kind in ("sqlite", "postgresql"):
            k = ing[kind]
            rows.append((
                f"Inference records ingested, {kind} ({_fmt(ing['records'])} records, batches of 10,000)",
                f"API {_fmt(k['api']['records_per_s'])}/s (**{k['api_ratio']:.2f}x** raw), "
                f"CLI import {_fmt(k['cli_records_per_s'])}/s (**{k['cli_ratio']:.2f}x**); "
                f"raw `insert_events` {_fmt(k['raw_insert_events_per_s'])} events/s",
                "≥ 0.5x raw",
            ))  # fmt: skip
            rows.append((
                f"Cost summary p50 at {_fmt(ing['records'])} records, {kind}",
                f"{k['api']['summary_http_p50_ms']:.2f} ms over HTTP, {k['api']['summary_in_process_p50_ms']:.2f} ms "
                f"in-process; a `projections run` worker projected {_fmt(k['api']['projected_per_s'])} records/s",
                "< 10 ms",
            ))  # fmt: skip
    rows += default_serve_rows(r)
    rows += startup.rows(r)
    rows += gateway.rows(r)
    rows += ab_assignment.rows(r)
    ab = r.get("ab")
    if ab:
        for kind in ("sqlite", "postgresql"):
            k = ab[kind]
            rows.append((
                f"A/B samples ingested, {kind} ({_fmt(ab['samples'])} samples, batches of 10,000)",
                f"API {_fmt(k['api']['samples_per_s'])}/s (**{k['api_ratio']:.2f}x** raw "
                f"{_fmt(k['raw_insert_events_per_s'])} events/s); projected {_fmt(k['api']['projected_per_s'])}/s",
                "≥ 0.5x raw",
            ))  # fmt: skip
            rows.append((
                f"A/B live statistics p50 at {_fmt(ab['samples'])} samples, {kind}",
                f"{k['api']['live_http_p50_ms']:.2f} ms over HTTP ({k['api']['live_in_process_p50_ms']:.2f} ms "
                "in-process)",
                "≤ 10 ms",
            ))  # fmt: skip
            rows.append((
                f"A/B assignment over HTTP, {kind}, {ab['assignment_clients']} concurrent keep-alive clients",
                f"{_fmt(k['api']['assignment_requests_per_s'])} requests/s",
                "",
            ))  # fmt: skip
    ds = r.get("datasets")
    if ds:
        c = ds["counting"]
        rows.append((
            "Token counting (o200k_base, chat rule)",
            f"{_fmt(c['ours_tokens_per_s'])} tokens/s, {_fmt(c['ours_examples_per_s'])} examples/s "
            f"(**{c['ours_examples_per_s'] / c['tiktoken_examples_per_s']:.2f}x** tiktoken alone on the same "
            f"texts: {_fmt(c['tiktoken_examples_per_s'])} examples/s)",
            "",
        ))  # fmt: skip
        for kind in ("sqlite", "postgresql"):
            k = ds[kind]
            rows.append((
                f"Examples collected, {kind} ({_fmt(ds['examples'])} examples)",
                f"{_fmt(k['collect_examples_per_s'])}/s (**{k['collect_ratio_raw']:.2f}x** raw "
                f"{_fmt(k['raw_insert_events_per_s'])} events/s); projected {_fmt(k['projected_examples_per_s'])}/s",
                "",
            ))  # fmt: skip
            rows.append((
                f"Dataset built from them, {kind}",
                f"{_fmt(k['build_examples_per_s'])} examples/s (**{k['build_ratio_raw']:.2f}x** raw insert, "
                f"**{k['build_ratio_tiktoken']:.2f}x** tiktoken counting alone)",
                "",
            ))  # fmt: skip
    if "local" in r:
        lt = r["local"]
        for label, run in (("first run, from FLOPs", lt["first"]), ("second run, calibrated by the first",
                                                                     lt["second"])):  # fmt: skip
            rows.append((
                f"Local training time, tiny model on this CPU ({lt['steps']} steps, {run['backend']}): {label}",
                f"estimated {run['estimate_s']:.2f} s, measured {run['actual_s']:.2f} s (**{run['ratio']:.2f}x** "
                f"apart; {run['train_s']:.2f} s of it training)",
                "within 3x after calibration" if run["method"] == "calibrated" else "",
            ))  # fmt: skip
    if "live" in r:
        lv = r["live"]
        for c, x in lv["by_concurrency"].items():
            rows.append((
                f"Live evaluation against the stand-in ({lv['examples']} examples, {lv['model_delay_ms']:.0f} ms a "
                f"reply), concurrency {c}",
                f"{_fmt(x['ours_per_s'])} predictions/s vs {_fmt(x['direct_per_s'])}/s calling the SDK directly "
                f"(**{x['ratio']:.2f}x**; {x['overhead_ms_per_prediction']:+.2f} ms per prediction)",
                "",
            ))  # fmt: skip
    lines = [
        f"Measured {r['measured_at']} on {r['machine']} ({r['cpus']} CPUs), Python {r['python']}, "
        "one `make bench` run" + "".join(f"; {name} measured {r[name]['measured_at']}" for name in r.get("partial", [])
                                         if name in r) + ".",
        "",
        "| What | Measured | Target |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
    ]
    return "\n".join(lines)


def update_readme(table: str) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        readme.write_text(f"{head}{START}\n{table}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="registry events for the rebuild benchmark")
    parser.add_argument("--large", type=int, default=100_000, help="history length for the latency benchmark")
    parser.add_argument("--records", type=int, default=1_000_000, help="inference records for the ingestion benchmark")
    parser.add_argument("--examples", type=int, default=200_000, help="examples for the dataset benchmark")
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md")
    parser.add_argument("--only", choices=sorted(PARTIAL), action="append",
                        help="run only these benchmarks and merge them into bench/results/latest.json")
    args = parser.parse_args()
    if args.only:
        return only(args)

    import os

    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    pg = ThrowawayPostgres().start(durable=True)  # fsync on: figures a real server would give
    try:
        with tempfile.TemporaryDirectory(prefix="ft-bench-") as tmp:
            t = Path(tmp)
            print("rebuild throughput ...", flush=True)
            results["rebuild"] = projection_rebuild.run(pg, t, args.events)
            print("status latency ...", flush=True)
            results["status"] = status_latency.run(pg, t, large=args.large)
            print("registry commands vs MLflow ...", flush=True)
            results["commands"] = registry_vs_mlflow.run(pg, t)
            print("inference ingestion ...", flush=True)
            results["ingest"] = inference_ingest.run(pg, t, args.records)
            print("inference ingestion, default serve ...", flush=True)
            results["default_serve"] = inference_ingest.run_default_serve(pg, t, 200_000)
            print("A/B samples ...", flush=True)
            results["ab"] = ab_ingest.run(pg, t, args.records)
            print("datasets ...", flush=True)
            results["datasets"] = dataset_build.run(pg, t, args.examples)
            print("local training ...", flush=True)
            results["local"] = local_training.run(t)
            print("live evaluation ...", flush=True)
            results["live"] = live_evaluation.run(t)
            print("start-up ...", flush=True)
            results["startup"] = startup.run(t)
            print("gateway ...", flush=True)
            results["gateway"] = gateway.run(t)
            print("A/B assignment alone ...", flush=True)
            results["ab_assignment"] = ab_assignment.run(t)
    finally:
        pg.stop()
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    table = render(results)
    print(table)
    if not args.no_readme:
        update_readme(table)


def _default_serve_alone(tmp: Path) -> dict[str, Any]:
    pg = ThrowawayPostgres().start(durable=True)
    try:
        return inference_ingest.run_default_serve(pg, tmp, 200_000)
    finally:
        pg.stop()


#: benchmarks that can be run alone (their ratios are measured within their own run)
PARTIAL = {
    "local": local_training.run,
    "live": live_evaluation.run,
    "default_serve": _default_serve_alone,
    "startup": startup.run,
    "gateway": gateway.run,
    "ab_assignment": ab_assignment.run,
}
#: the README rows each partial benchmark renders, for a machine without an earlier full run
PARTIAL_ROWS = {"default_serve": default_serve_rows, "startup": startup.rows, "gateway": gateway.rows,
                "ab_assignment": ab_assignment.rows}


def only(args: argparse.Namespace) -> None:
    latest = ROOT / "bench" / "results" / "latest.json"
    results = json.loads(latest.read_text()) if latest.exists() else {}
    with tempfile.TemporaryDirectory(prefix="ft-bench-") as tmp:
        for name in args.only:
            print(f"{name} ...", flush=True)
            results[name] = PARTIAL[name](Path(tmp))
            results[name]["measured_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["partial"] = sorted(set(results.get("partial", [])) | set(args.only))
    latest.parent.mkdir(parents=True, exist_ok=True)
    latest.write_text(json.dumps(results, indent=2))
    if "rebuild" in results:  # a full run is on record: render the whole table
        table = render(results)
        print(table)
        if not args.no_readme:
            update_readme(table)
        return
    # No full run here: replace (or add) just these benchmarks' rows in README's table.
    rows = [row for name in args.only if name in PARTIAL_ROWS for row in PARTIAL_ROWS[name](results)]
    for row in rows:
        print(f"| {' | '.join(row)} |")
    if not args.no_readme:
        stamps = "; ".join(f"{n} measured {results[n]['measured_at']}" for n in args.only)
        update_readme_rows(rows, stamps)


def update_readme_rows(rows: list[tuple[str, str, str]], stamp: str) -> None:
    readme = ROOT / "README.md"
    head, rest = readme.read_text().split(START, 1)
    table, tail = rest.split(END, 1)
    lines = table.strip("\n").split("\n")
    for what, measured, target in rows:
        line = f"| {what} | {measured} | {target} |"
        at = next((i for i, old in enumerate(lines) if old.startswith(f"| {what} |")), None)
        if at is None:
            lines.append(line)
        else:
            lines[at] = line
    for name in re.findall(r"(\w+) measured", stamp):  # this run's stamp replaces the benchmark's last one
        lines[0] = re.sub(rf"; {name} measured [^;]*?(?=;|\.$)", "", lines[0])
    lines[0] = lines[0].rstrip(".") + f"; {stamp}."
    readme.write_text(f"{head}{START}\n" + "\n".join(lines) + f"\n{END}{tail}")


if __name__ == "__main__":
    main()
