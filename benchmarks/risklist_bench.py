"""The daily risk list end to end at scale: read, check, features, score, reasons, store.

    .venv/bin/python -m benchmarks.risklist_bench [--customers 1000000] [--days 490]
                                                  [--world DIR] [--repeat 1]

1. A world from the simulator (``churnml generate --no-oracle --format parquet``; 10^6
   customers over 660 days give about 10^7 contacts), cached under ``--cache``
   (default ``$TMPDIR/churnml-risklist-bench``) and reused; or ``--world DIR`` with
   ``customers.parquet`` and ``interactions.parquet``.
2. A champion trained on the committed sample world (same columns as the simulator's
   worlds), in a CHURNML_HOME under the cache, reused.
3. Each repeat runs the list of the world's last contact day in a fresh process with a
   fresh SQLite store, as ``churnml risk-list`` does (``churnml.cli.risk_list.ListJob``: read and
   check the tables, load the model, features, score, reasons, changes, drift, store in one
   transaction), and prints one table: the time of each stage, the total, and the peak
   RSS of that process. Targets (issue 5): under 2 minutes and 8 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = (
    ("reading", "read + check tables"),
    ("loading", "load the model"),
    ("building features", "features"),
    ("scoring", "score + reasons"),
    ("comparing", "changes + drift"),
    ("storing", "store (one transaction)"),
)


def _world(cache: Path, customers: int, days: int) -> Path:
    folder = cache / f"world-{customers}-{days}"
    if not (folder / "interactions.parquet").exists():
        print(f"generating {folder} (minutes at 10^6 customers)...", file=sys.stderr)
        subprocess.run(
            [
                str(Path(sys.executable).with_name("churnml")),
                "generate",
                "--customers",
                str(customers),
                "--days",
                str(days),
                "--seed",
                "7",
                "--no-oracle",
                "--format",
                "parquet",
                "--out",
                str(folder),
                "--quiet",
            ],
            check=True,
        )
    return folder


def _home(cache: Path) -> Path:
    home = cache / "home"
    if (home / ".champion").exists():
        return home
    print(f"training a champion on the sample world in {home}...", file=sys.stderr)
    from churnml.settings import SAMPLE_DIR
    from churnml.validation import load_tables
    from training import TrainingSettings, promote, train_from_tables

    tables = load_tables(SAMPLE_DIR / "customers.csv", SAMPLE_DIR / "interactions.csv")
    settings = TrainingSettings(home=home, backtest_folds=1)
    result = train_from_tables(tables.customers, tables.interactions, settings)
    if result.champion_version is None:
        promote(result.model_version, settings, reason="benchmark")
    (home / ".champion").write_text(result.model_version)
    return home


def _worker(world: Path, home: Path, store: str) -> None:
    """One list, timed stage by stage (the stages are the job's own progress messages)."""
    marks: list[tuple[str, float, float]] = []

    def mark(message: str) -> None:
        marks.append((message, time.perf_counter(), time.process_time()))

    start = time.perf_counter()
    from churnml.cli.common import command_settings
    from churnml.cli.risk_list import ListJob
    from churnml.engines.local import LocalEngine
    from churnml.progress import Reporter
    from churnml.validation import load_tables

    settings = command_settings(
        home=home,
        customers=world / "customers.parquet",
        interactions=world / "interactions.parquet",
        risk_store=store,
        lists={},
    )
    mark("reading")
    core = settings.core
    tables = load_tables(core.customers, core.interactions, quarantine_dir=None)
    mark("loading")
    reporter = Reporter(quiet=True)
    job = ListJob.prepare(settings, reporter)
    result = job.make(LocalEngine(core, tables=tables), None, reporter, report=mark)
    marks.append(("end", time.perf_counter(), time.process_time()))
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for (name, at, cpu_at), (_, after, cpu_after) in zip(marks, marks[1:], strict=False):
        key = next((k for k, _ in STAGES if name.startswith(k)), name)
        seconds[key] = seconds.get(key, 0.0) + after - at
        cpu[key] = cpu.get(key, 0.0) + cpu_after - cpu_at
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "total": time.perf_counter() - start,
                "total_cpu": time.process_time(),
                "customers": len(tables.customers),
                "contacts": len(tables.interactions),
                "scored": result.header["scored"],
                "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=490)
    parser.add_argument("--world", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "churnml-risklist-bench"
    )
    parser.add_argument("--worker", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        world, home, store = args.worker
        _worker(Path(world), Path(home), store)
        return 0

    args.cache.mkdir(parents=True, exist_ok=True)
    world = args.world or _world(args.cache, args.customers, args.days)
    home = _home(args.cache)
    runs = []
    for repeat in range(args.repeat):
        store = args.cache / f"lists-{os.getpid()}-{repeat}.db"
        store.unlink(missing_ok=True)
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.risklist_bench",
                "--worker",
                str(world),
                str(home),
                f"sqlite:///{store}",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "CHURNML_HOME": str(home)},
        )
        if completed.returncode != 0:
            print(completed.stderr[-3000:], file=sys.stderr)
            return 1
        runs.append(json.loads(completed.stdout.strip().splitlines()[-1]))
        store.unlink(missing_ok=True)
    print(_table(runs))
    return 0


def _table(runs: list[dict]) -> str:
    first = runs[0]
    lines = [
        f"risk list of {first['scored']:,} customers scored from {first['customers']:,} "
        f"customers and {first['contacts']:,} contacts; median of {len(runs)} run(s); "
        f"load average {os.getloadavg()[0]:.1f}",
        "",
        "| stage | wall s | CPU s |",
        "|---|---:|---:|",
    ]
    for key, label in STAGES:
        wall = statistics.median(r["seconds"].get(key, 0.0) for r in runs)
        cpu = statistics.median(r["cpu"].get(key, 0.0) for r in runs)
        lines.append(f"| {label} | {wall:.1f} | {cpu:.1f} |")
    total = statistics.median(r["total"] for r in runs)
    total_cpu = statistics.median(r["total_cpu"] for r in runs)
    peak = statistics.median(r["peak_rss"] for r in runs) / 2**30
    lines += [
        f"| **total** (target < 120 s), imports included | **{total:.1f}** | {total_cpu:.1f} |",
        "",
        f"peak RSS {peak:.2f} GiB (target < 8 GiB); "
        f"{first['contacts'] / total / 1e6:.2f} M contacts/s end to end",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
