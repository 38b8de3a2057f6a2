"""Feature building speed: pandas groupby vs DuckDB SQL vs churnml's build_features.

    python -m benchmarks.features_bench [--customers N] [--contacts M] [--repeat R]
                                        [--world DIR] [--as-of YYYY-MM-DD]

Builds a synthetic world (tests.oracles.world) or loads one from ``--world DIR``
(customers / interactions as .parquet, a Parquet folder or .csv), then runs each
method in a fresh subprocess, so that its peak RSS is its own. All three compute
the full feature set (see docs/features.md); the profile columns come from one
shared helper in the references. Times exclude loading the world; peak RSS
includes it (the "loaded" column is the RSS right after loading).

The world and the two references are the tests' oracles, imported from
``tests/oracles/`` so that the benchmark times the very code the tests check; run it
from the repository root, which puts ``tests`` on the import path.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHODS = ("pandas", "duckdb", "churnml")


def _run_method(method: str, world: Path, as_of: str, repeat: int) -> dict:
    from tests.oracles.world import load_world

    customers, interactions = load_world(world)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if method == "pandas":
        from tests.oracles.reference_features import pandas_features as build
    elif method == "duckdb":
        from tests.oracles.reference_features import duckdb_features as build
    else:
        from features import build_features as build
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        frame = build(customers, interactions, as_of)
        seconds.append(time.perf_counter() - start)
        del frame
    return {
        "method": method,
        "seconds": seconds,
        "contacts": len(interactions),
        "loaded_bytes": loaded,
        "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def _table(results: list[dict]) -> str:
    base = next((r for r in results if r["method"] == "pandas"), results[0])
    base_rate = base["contacts"] / statistics.median(base["seconds"])
    lines = [
        "| method | median s | contacts/s | peak RSS | loaded RSS | vs pandas |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        median = statistics.median(r["seconds"])
        rate = r["contacts"] / median
        lines.append(
            f"| {r['method']} | {median:.2f} | {rate / 1e6:.2f} M | "
            f"{r['peak_bytes'] / 2**30:.2f} GiB | {r['loaded_bytes'] / 2**30:.2f} GiB | "
            f"{rate / base_rate:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--world", type=Path, default=None, help="load the world from here")
    parser.add_argument("--as-of", default="2024-12-31")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(_run_method(args.worker, args.world, args.as_of, args.repeat)))
        return 0

    with tempfile.TemporaryDirectory(prefix="churnml-bench-") as tmp:
        world = args.world
        if world is None:
            from tests.oracles.world import make_world, save_world

            start = time.perf_counter()
            customers, interactions = make_world(args.customers, args.contacts)
            world = Path(tmp)
            save_world(customers, interactions, world)
            print(
                f"world: {len(customers):,} customers, {len(interactions):,} contacts "
                f"({time.perf_counter() - start:.0f} s to build)",
                file=sys.stderr,
            )
            del customers, interactions
        results = []
        for method in args.methods.split(","):
            command = [
                sys.executable,
                "-m",
                "benchmarks.features_bench",
                "--worker",
                method,
                "--world",
                str(world),
                "--as-of",
                args.as_of,
                "--repeat",
                str(args.repeat),
            ]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{method} failed:\n{done.stderr}", file=sys.stderr)
                continue
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"{method}: {results[-1]['seconds']}", file=sys.stderr)
    print(_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
