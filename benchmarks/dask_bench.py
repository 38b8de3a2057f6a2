"""The Dask engine at scale: 1 worker against 2, time and peak memory per worker.

    .venv/bin/python -m benchmarks.dask_bench [--customers 1000000] [--days 490]
                                              [--world DIR] [--workers 1 2] [--no-score]
                                              [--partitions N] [--as-of YYYY-MM-DD]
                                              [--home DIR] [--memory-limit 4GiB] [--no-local]

1. A world from the simulator (``churnml generate --no-oracle --format parquet``, cached
   under ``--cache`` as ``benchmarks.risklist_bench`` does: 10^6 customers over 490 days
   give about 10^7 contacts), or ``--world DIR`` with ``customers.parquet`` and
   ``interactions.parquet`` (files or folders).
2. For scoring, a champion trained on the committed sample world (``--home DIR``, or one
   trained once under the cache).
3. For each worker count, a fresh process starts a local cluster of that many worker
   processes (1 thread each) and runs ``churnml.engines.dask``: read and check the tables
   (``load_tables_dask``), build the features of the as-of day (``build_features_dask``,
   collected to pandas), then score them (``score_dask``, with reasons, collected). It
   prints one table: the wall time of each stage and the peak RSS of each worker process
   (``ru_maxrss`` read on the workers with ``client.run``) and of the client process.
   The "features + score" stage builds the features again inside ``score_dask``. Then
   the day's risk list, end to end into a fresh SQLite store (``make_risk_list_dask``:
   features, scores, reasons, drift, ranking, storing every customer).
4. For reference, the local engine in one process (``--no-local`` skips it):
   ``load_tables``, ``build_features``, then ``features_from_tables`` and
   ``Predictor.explain``, then ``make_risk_list``; its "worker" peak is the process's own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIB = 1024**3


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _table_path(world: Path, table: str) -> Path:
    for candidate in (world / f"{table}.parquet", world / table, world / f"{table}.csv"):
        if candidate.exists():
            return candidate
    raise SystemExit(f"{world}: no {table}.parquet, {table}/ or {table}.csv")


def _default_as_of(world: Path) -> str:
    manifest = world / "MANIFEST.json"
    if not manifest.exists():
        raise SystemExit(f"{world}: no MANIFEST.json to find the last day; pass --as-of")
    arguments = json.loads(manifest.read_text())["arguments"]
    start = dt.date.fromisoformat(arguments["start_date"])
    return str(start + dt.timedelta(days=int(arguments["days"]) - 1))


def _served(args: argparse.Namespace):
    """The champion of ``--home`` as the service and the risk-list job load it."""
    from serving.loading import load_served_model

    tracking = f"sqlite:///{(args.home / 'mlflow.db').resolve()}"
    return load_served_model("models:/churn-risk@champion", tracking)


def _list_parts(args: argparse.Namespace, scratch: Path) -> tuple:
    """A fresh SQLite store in ``scratch``, default list settings and the day."""
    from serving.settings import RiskListSettings
    from serving.store import RiskListStore

    store = RiskListStore(f"sqlite:///{scratch / 'risk-lists.db'}")
    return store, RiskListSettings(), dt.date.fromisoformat(args.as_of)


def _run_local(args: argparse.Namespace) -> dict:
    """The local engine in this process, for reference: load_tables, build_features and
    the model's scores of the same day (as make_risk_list does)."""
    import pandas as pd

    from churnml.validation import load_tables
    from features import build_features

    result: dict = {"workers": "local", "seconds": {}, "worker_peaks": {}}
    marks = [time.perf_counter()]

    def mark(stage: str) -> None:
        marks.append(time.perf_counter())
        result["seconds"][stage] = marks[-1] - marks[-2]
        result["worker_peaks"][stage] = [_peak()]

    with tempfile.TemporaryDirectory(prefix="churnml-dask-bench-") as scratch:
        tables = load_tables(
            _table_path(args.world, "customers"),
            _table_path(args.world, "interactions"),
            quarantine_dir=Path(scratch),
        )
        mark("read + check")
        features = build_features(tables.customers, tables.interactions, args.as_of)
        mark("features")
        result.update(
            customers=len(tables.customers),
            contacts=len(tables.interactions),
            partitions=1,
            active=len(features),
            set_aside=tables.set_aside,
        )
        del features
        if args.home is not None:
            served = _served(args)
            predictor = served.predictor
            marks[-1] = time.perf_counter()
            features = predictor.model.features_from_tables(
                tables.customers, tables.interactions, pd.Timestamp(args.as_of)
            )
            prediction = predictor.explain(predictor.prepare(features))
            mark("features + score")
            result["scored"] = len(prediction.probability)
            del features, prediction
            from serving.risklist import make_risk_list

            store, settings, day = _list_parts(args, Path(scratch))
            marks[-1] = time.perf_counter()
            make_risk_list(tables.customers, tables.interactions, day, served, store, settings)
            mark("risk list")
    result["client_peak"] = _peak()
    return result


def _run(args: argparse.Namespace) -> dict:
    """One worker count, in this process: the stages' times and the peaks."""
    from churnml.engines.dask import cluster
    from churnml.engines.dask.checking import load_tables_dask
    from churnml.engines.dask.partitions import build_features_dask, score_dask

    world, workers = args.world, args.run
    result: dict = {"workers": workers, "seconds": {}, "worker_peaks": {}}
    marks = [time.perf_counter()]

    def mark(stage: str) -> None:
        marks.append(time.perf_counter())
        result["seconds"][stage] = marks[-1] - marks[-2]

    def worker_peaks(stage: str) -> None:
        peaks = client.run(_peak)
        result["worker_peaks"][stage] = sorted(peaks.values(), reverse=True)

    with (
        tempfile.TemporaryDirectory(prefix="churnml-dask-bench-") as scratch,
        cluster.client(None, workers, memory_limit=args.memory_limit) as client,
    ):
        mark("start cluster")
        tables = load_tables_dask(
            _table_path(world, "customers"),
            _table_path(world, "interactions"),
            client=client,
            partitions=args.partitions,
            quarantine_dir=Path(scratch),
        )
        mark("read + check")
        worker_peaks("read + check")
        features = build_features_dask(tables, args.as_of)
        mark("features")
        worker_peaks("features")
        result.update(
            customers=tables.customer_rows,
            contacts=tables.interaction_rows,
            partitions=tables.partitions,
            active=len(features),
            set_aside=tables.set_aside,
        )
        del features
        if args.home is not None:
            served = _served(args)
            model = served.model
            marks[-1] = time.perf_counter()  # loading the model is not the engine's work
            scores = score_dask(model, tables, args.as_of)
            mark("features + score")
            worker_peaks("features + score")
            result["scored"] = len(scores)
            del scores
            from churnml.engines.dask.lists import make_risk_list_dask

            store, settings, day = _list_parts(args, Path(scratch))
            marks[-1] = time.perf_counter()
            make_risk_list_dask(tables, day, served, store, settings)
            mark("risk list")
            worker_peaks("risk list")
    result["client_peak"] = _peak()
    return result


def _table(results: list[dict]) -> str:
    stages = [
        s
        for s in ("read + check", "features", "features + score", "risk list")
        if s in results[0]["seconds"]
    ]
    head = "| workers | " + " | ".join(f"{s} s" for s in stages) + " | "
    head += " | ".join(f"peak/worker after {s}" for s in stages) + " | client peak |"
    lines = [head, "|" + "---|" * (len(stages) * 2 + 2)]
    # The local engine is one process: its "worker" is the client itself.
    for r in results:
        times = " | ".join(f"{r['seconds'][s]:.1f}" for s in stages)
        peaks = " | ".join(
            ", ".join(f"{p / GIB:.2f}" for p in r["worker_peaks"][s]) + " GiB" for s in stages
        )
        lines.append(f"| {r['workers']} | {times} | {peaks} | {r['client_peak'] / GIB:.2f} GiB |")
    first = results[0]
    lines.append("")
    lines.append(
        f"{first['contacts']:,} contacts of {first['customers']:,} customers, "
        f"{first['active']:,} active on the day, {first['partitions']} partitions"
        + (f", {first['scored']:,} scored" if "scored" in first else "")
        + f"; set aside: {first['set_aside']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=490)
    parser.add_argument("--world", type=Path, default=None)
    parser.add_argument("--home", type=Path, default=None, help="CHURNML_HOME with a champion")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument("--as-of", default=None)
    parser.add_argument("--no-score", action="store_true")
    parser.add_argument("--no-local", action="store_true", help="skip the local engine's run")
    parser.add_argument("--memory-limit", default="auto", help="per worker, e.g. 4GiB")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "churnml-dask-bench"
    )
    parser.add_argument("--run", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run is not None:
        print(json.dumps(_run_local(args) if args.run == 0 else _run(args)))
        return 0

    from benchmarks.risklist_bench import _home, _world

    world = args.world or _world(args.cache, args.customers, args.days)
    as_of = args.as_of or _default_as_of(world)
    home = None if args.no_score else (args.home or _home(args.cache))
    results = []
    for workers in [*args.workers, *([] if args.no_local else [0])]:
        print(f"{workers or 'the local engine'} worker(s)...", file=sys.stderr)
        command = [
            sys.executable,
            "-m",
            "benchmarks.dask_bench",
            "--run",
            str(workers),
            "--world",
            str(world),
            "--as-of",
            as_of,
            "--memory-limit",
            args.memory_limit,
        ]
        if args.partitions:
            command += ["--partitions", str(args.partitions)]
        if home is not None:
            command += ["--home", str(home)]
        done = subprocess.run(
            command, check=True, capture_output=True, text=True, env={**os.environ}
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"as of {as_of}, world {world}")
    print(_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
