"""Training quality and cost on simulated worlds.

python benchmarks/training_bench.py quality WORLD_DIR [WORLD_DIR ...]
    trains on each world (its own tracking store in a temporary folder) and prints
    the test ROC-AUC of the model, the baselines and the world's oracle on the
    oracle's customers and day, plus the training time.
python benchmarks/training_bench.py worlds
    generates several worlds (other seeds, sizes, churn rates) and runs quality on each.
python benchmarks/training_bench.py scale N [N ...] [--set SETTING=VALUE ...]
    training time and peak memory for N customers (e.g. 100000 1000000); --set changes
    a TrainingSettings field for the run (e.g. --set max_train_rows=500000).

scale generates the world (simulator, 540 days, seed 1, parquet) once into a cache
folder, ``$CHURNML_BENCH_CACHE`` or ``<tmp>/churnml-bench-worlds``, in a process of
its own, then trains on it in a fresh process per N, so that neither the generation
nor an earlier N counts towards the peak. It prints one JSON line per N:

    seconds / cpu_seconds   wall and CPU (user + system) time of train_from_tables
    peak_rss_gb             the training process's high-water mark (VmHWM, 1e9 bytes),
                            loaded tables included; loaded_rss_gb: RSS before training
    stages                  per stage (as reported by the pipeline): wall and CPU seconds
                            and the peak RSS sampled every 0.2 s during the stage
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from churnml.validation import load_tables
from model.loading import load_model
from model.predictor import Predictor
from training import TrainingSettings, train_from_tables
from training.snapshots import contacts_in_window


def oracle_comparison(world: Path, settings: TrainingSettings, result_version: str) -> dict:
    """ROC-AUC of the model, the rule and the oracle on the oracle's (customer, day) rows."""
    tables = load_tables(world / "customers.csv", world / "interactions.csv")
    oracle = pd.read_csv(world / "oracle.csv", dtype={"customer_id": str})
    uri = f"models:/{settings.model_name}/{result_version}"
    predictor = Predictor(load_model(uri, settings.resolved_tracking_uri()).model)
    rows = []
    for day, part in oracle.groupby("as_of"):
        scores = predictor.score_tables(
            tables.customers, tables.interactions, day, with_reasons=False
        )
        merged = part.merge(scores, on="customer_id")
        merged["rule"] = (
            contacts_in_window(tables.interactions, pd.Timestamp(day))
            .reindex(merged["customer_id"])
            .fillna(0)
            .to_numpy()
        )
        rows.append(merged)
    merged = pd.concat(rows)
    return {
        "oracle_rows": len(merged),
        "model_roc_auc": roc_auc_score(merged["label"], merged["churn_probability"]),
        "oracle_roc_auc": roc_auc_score(merged["label"], merged["true_probability"]),
        "rule_roc_auc": roc_auc_score(merged["label"], merged["rule"]),
    }


def quality(world: Path, settings: TrainingSettings | None = None) -> dict:
    home = Path(tempfile.mkdtemp(prefix="churnml-bench-"))
    settings = replace(settings or TrainingSettings(), home=home, tracking_uri=None)
    contacts = world / "retention_contacts.csv"  # as `churnml train` on the folder would
    tables = load_tables(
        world / "customers.csv",
        world / "interactions.csv",
        retention_contacts_path=contacts if contacts.exists() else None,
    )
    started = time.perf_counter()
    result = train_from_tables(
        tables.customers,
        tables.interactions,
        settings,
        retention_contacts=tables.retention_contacts,
    )
    seconds = time.perf_counter() - started
    test = result.test
    summary = {
        "world": str(world),
        "test_roc_auc": test["model"]["roc_auc"],
        "test_logistic_roc_auc": test["logistic"]["roc_auc"],
        "test_rule_roc_auc": test["rule"]["roc_auc"],
        "test_ece": test["model"]["ece"],
        "backtest_roc_auc": [o.metrics["model"]["roc_auc"] for o in result.folds],
        "backtest_logistic_roc_auc": [o.metrics["logistic"]["roc_auc"] for o in result.folds],
        "gate": result.gate.promote,
        "train_seconds": round(seconds, 1),
        "stage_seconds": result.seconds,
    }
    if (world / "oracle.csv").exists():
        summary.update(oracle_comparison(world, settings, result.model_version))
    return summary


def worlds() -> list[dict]:
    from churnml.simulator import SimulationParams, generate_world

    cases = [
        ("seed7-5k", 5_000, 7, SimulationParams()),
        ("seed11-20k", 20_000, 11, SimulationParams()),
        ("seed13-10k-busy", 10_000, 13, replace(SimulationParams(), issue_rate_per_day=0.03)),
        (
            "seed17-10k-few-arrivals",
            10_000,
            17,
            replace(SimulationParams(), arrivals_per_customer_day=0.0003),
        ),
    ]
    out = []
    for name, n, seed, params in cases:
        folder = Path(tempfile.mkdtemp(prefix=f"churnml-world-{name}-"))
        generate_world(n, 540, seed, folder, params=params)
        summary = quality(folder)
        summary["world"] = name
        print(json.dumps(summary, default=float), flush=True)
        out.append(summary)
    return out


SCALE_DAYS = 540
SCALE_SEED = 1


def _cache_folder() -> Path:
    return Path(
        os.environ.get("CHURNML_BENCH_CACHE")
        or Path(tempfile.gettempdir()) / "churnml-bench-worlds"
    )


def scale_world(n: int) -> Path:
    """The cached scale world of ``n`` customers, generated in a child process if missing."""
    folder = _cache_folder() / f"world-{n}-d{SCALE_DAYS}-s{SCALE_SEED}"
    if not (folder / "MANIFEST.json").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        code = (
            "import sys; from pathlib import Path; "
            "from churnml.simulator import generate_world; "
            "generate_world(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), "
            "Path(sys.argv[4]), file_format='parquet')"
        )
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            [sys.executable, "-c", code, str(n), str(SCALE_DAYS), str(SCALE_SEED), str(partial)],
            check=True,
        )
        partial.rename(folder)
    return folder


def _rss_kb(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _StageMeter:
    """Wall, CPU and peak RSS (sampled) between the pipeline's progress messages."""

    def __init__(self) -> None:
        self.stages: list[dict] = []
        self._name = "start"
        self._wall, self._cpu, self._peak = time.perf_counter(), _cpu_seconds(), _rss_kb()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            rss = _rss_kb()
            with self._lock:
                self._peak = max(self._peak, rss)

    def mark(self, message: str) -> None:
        now, cpu, rss = time.perf_counter(), _cpu_seconds(), _rss_kb()
        with self._lock:
            self.stages.append(
                {
                    "stage": self._name,
                    "seconds": round(now - self._wall, 1),
                    "cpu_seconds": round(cpu - self._cpu, 1),
                    "peak_rss_gb": round(max(self._peak, rss) * 1024 / 1e9, 2),
                }
            )
            self._name = message[:60]
            self._wall, self._cpu, self._peak = now, cpu, rss

    def close(self) -> list[dict]:
        self.mark("end")
        self._stop.set()
        self._thread.join()
        return self.stages


def scale_train(folder: Path, changes: dict | None = None) -> dict:
    """Train on a world folder in this process; what ``scale`` prints for it."""
    tables = load_tables(folder / "customers.parquet", folder / "interactions.parquet")
    home = Path(tempfile.mkdtemp(prefix="churnml-bench-"))
    settings = TrainingSettings(home=home, **(changes or {}))
    loaded = _rss_kb()
    meter = _StageMeter()
    started, cpu = time.perf_counter(), _cpu_seconds()
    try:
        result = train_from_tables(
            tables.customers, tables.interactions, settings, report=meter.mark
        )
    finally:
        stages = meter.close()
    seconds, cpu_seconds = time.perf_counter() - started, _cpu_seconds() - cpu
    shutil.rmtree(home, ignore_errors=True)
    return {
        "customers_rows": len(tables.customers),
        "interactions_rows": len(tables.interactions),
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "peak_rss_gb": round(_rss_kb("VmHWM") * 1024 / 1e9, 2),
        "loaded_rss_gb": round(loaded * 1024 / 1e9, 2),
        "stage_seconds": result.seconds,
        "stages": stages[1:],
        "test_roc_auc": result.test["model"]["roc_auc"],
        "test_logistic_roc_auc": result.test["logistic"]["roc_auc"],
        "test_ece": result.test["model"]["ece"],
        "backtest_roc_auc": [o.metrics["model"]["roc_auc"] for o in result.folds],
    }


def scale(n: int, changes: dict | None = None) -> dict:
    folder = scale_world(n)
    child = subprocess.run(
        [sys.executable, __file__, "_scale_train", str(folder), json.dumps(changes or {})],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    result = json.loads(child.stdout.splitlines()[-1])
    return {"customers": n, "world": str(folder), "settings": changes or {}, **result}


def _setting_changes(pairs: list[str]) -> dict:
    """``name=value`` pairs as TrainingSettings fields, values typed like the defaults."""
    defaults = TrainingSettings()
    changes = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        if not hasattr(defaults, name):
            raise SystemExit(f"--set {pair}: TrainingSettings has no field {name!r}")
        changes[name] = type(getattr(defaults, name))(text)
    return changes


def main(argv: list[str]) -> None:
    if argv and argv[0] == "_scale_train":
        changes = json.loads(argv[2]) if len(argv) > 2 else {}
        print(json.dumps(scale_train(Path(argv[1]), changes), default=float), flush=True)
        return
    if not argv or argv[0] not in {"quality", "worlds", "scale"}:
        print(__doc__)
        return
    if argv[0] == "quality":
        for world in argv[1:]:
            print(json.dumps(quality(Path(world)), default=float), flush=True)
    elif argv[0] == "worlds":
        worlds()
    else:
        sizes, pairs, rest = [], [], iter(argv[1:])
        for word in rest:
            if word == "--set":
                pairs.append(next(rest, ""))
            else:
                sizes.append(int(word))
        changes = _setting_changes(pairs)
        for n in sizes:
            print(json.dumps(scale(n, changes), default=float), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
