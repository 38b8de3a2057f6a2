"""HTTP benchmark: ``churnml serve`` (BentoML) against ``mlflow models serve``, same model.

    .venv/bin/python -m benchmarks.serving_bench [--seconds 5] [--repeat 3] [--workers 1]
    .venv/bin/python -m benchmarks.serving_bench --profile-cpu [--rounds 7] [--calls 200]

1. Prepares a champion trained on the committed sample world under a CHURNML_HOME
   (``--home``, default ``$TMPDIR/churnml-serving-bench``; reused when it already holds a
   champion; ~25 s the first time).
2. Starts the real ``churnml serve`` and ``mlflow models serve -m
   models:/churn-risk@champion --env-manager local`` with the same number of worker
   processes, both on 127.0.0.1 (free ports), and waits until both answer.
3. Checks that both score the same customers with the same probabilities (to 1e-9).
4. From this process (a small asyncio HTTP/1.1 client on raw sockets), loads each server
   for a fixed time at concurrency 1 and 16, for (a) one customer with 20 interactions
   and (b) batches of 100 customers, and prints one table: server, case, concurrency,
   requests/s, customers/s, p50 ms, p99 ms, errors. With ``--repeat R`` every cell runs
   R times (servers interleaved) and the table shows the medians over the R runs.
5. Stops both servers (their process groups), whatever happened.

``--profile-cpu`` starts no server: it loads the same champion in this process and
sends the same two request bodies through the steps of ``POST /score`` (the pydantic
validation BentoML runs on the body bytes, then the steps of ``serving.scoring.Scorer``
and ``model.predictor.Predictor``, then the response as BentoML serializes it), timing
each with ``time.process_time``. It prints CPU milliseconds per request per step, the
median over ``--rounds`` rounds of ``--calls`` calls: CPU time, unlike wall time, barely
moves when other processes share the cores. The steps' results are checked against
``Scorer.score`` first.

With one worker the client keeps its connections open; with several it opens a new
connection per request, so the kernel spreads them over the workers
(shared/perf-facts.md: 16 connections opened at once mostly land on one worker).
The client runs on the same 2 cores as the servers: figures are for this machine and
its load at the time (printed with the table).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
AS_OF = "2026-06-01"
MODEL_URI = "models:/churn-risk@champion"
START_SECONDS = 180
REQUEST_TIMEOUT = 30.0
CONTACTS_SINGLE = 20
BATCH = 100


# --------------------------------------------------------------------------- model


def prepare_home(home: Path) -> Path:
    """A CHURNML_HOME whose registry holds a champion trained on the sample world."""
    home.mkdir(parents=True, exist_ok=True)
    tracking = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    if (home / "mlflow.db").exists():
        from serving.loading import check_registered

        try:
            version = check_registered(MODEL_URI, tracking)
            print(f"reusing {MODEL_URI} (version {version}) in {home}", flush=True)
            return home
        except Exception:  # noqa: BLE001 - no champion yet: train one below
            pass
    print(f"training a champion on {SAMPLE} into {home} ...", flush=True)
    from churnml.validation import load_tables
    from training import TrainingSettings, promote, train_from_tables

    tables = load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")
    settings = TrainingSettings(home=home, backtest_folds=1, tracking_uri=tracking)
    result = train_from_tables(tables.customers, tables.interactions, settings)
    if result.champion_version is None:
        promote(result.model_version, settings, reason="serving benchmark")
    return home


# --------------------------------------------------------------------------- payloads


def sample_customers() -> list[dict[str, Any]]:
    """Active customers of the sample world on AS_OF with their contacts, as JSON objects
    (busiest first); each keeps at most its CONTACTS_SINGLE latest contacts."""
    import pandas as pd

    customers = pd.read_csv(SAMPLE / "customers.csv", dtype=str, keep_default_na=False)
    contacts = pd.read_csv(SAMPLE / "interactions.csv", dtype=str, keep_default_na=False)
    contacts = contacts[contacts["started_at"] < "2026-06-02"]
    active = (customers["signup_date"] <= AS_OF) & (
        (customers["churned_at"] == "") | (customers["churned_at"] > AS_OF)
    )
    customers = customers[active]
    grouped = {k: g.sort_values("started_at") for k, g in contacts.groupby("customer_id")}
    out = []
    for record in customers.to_dict("records"):
        group = grouped.get(record["customer_id"])
        if group is None or len(group) < 5:
            continue
        customer = {k: (None if v == "" else v) for k, v in record.items()}
        customer.pop("churned_at", None)
        if customer.get("monthly_revenue") is not None:
            customer["monthly_revenue"] = float(customer["monthly_revenue"])
        rows = group.drop(columns=["customer_id"]).tail(CONTACTS_SINGLE).to_dict("records")
        customer["interactions"] = [
            {k: (None if v == "" else v) for k, v in r.items()} for r in rows
        ]
        out.append(customer)
    out.sort(key=lambda c: -len(c["interactions"]))
    return json.loads(json.dumps(out))


def churnml_body(customers: list[dict[str, Any]]) -> bytes:
    return json.dumps({"customers": customers, "as_of": AS_OF}).encode()


def mlflow_body(customers: list[dict[str, Any]]) -> bytes:
    """The pyfunc's dict of tables as MLflow's ``inputs`` (records per table)."""
    profiles = [{k: v for k, v in c.items() if k != "interactions"} for c in customers]
    contacts = [
        {**i, "customer_id": c["customer_id"]} for c in customers for i in c["interactions"]
    ]
    return json.dumps(
        {"inputs": {"customers": profiles, "interactions": contacts, "as_of": AS_OF}}
    ).encode()


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    name: str
    port: int
    path: str
    key: str | None
    process: subprocess.Popen
    log: Path
    body: Any  # customers -> bytes
    ready_path: str

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def start(name: str, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = open(log, "wb")
    try:
        return subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        handle.close()


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            with urllib.request.urlopen(server.url(server.ready_path), timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"{server.name} did not start:\n{server.log.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(0.5)


def post(server: Server, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(server.url(server.path), data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if server.key:
        request.add_header("Authorization", f"Bearer {server.key}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()[:500]


def probabilities(server: Server, customers: list[dict[str, Any]]) -> dict[str, float]:
    status, answer = post(server, server.body(customers))
    if status != 200:
        raise RuntimeError(f"{server.name} answered {status}: {answer!r}")
    rows = answer["scores"] if "scores" in answer else answer["predictions"]
    return {str(r["customer_id"]): float(r["churn_probability"]) for r in rows}


# --------------------------------------------------------------------------- load


@dataclass
class Cell:
    server: str
    case: str
    concurrency: int
    customers_per_request: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def request_bytes(server: Server, body: bytes, *, close: bool) -> bytes:
    head = [
        f"POST {server.path} HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close" if close else "Connection: keep-alive",
    ]
    if server.key:
        head.append(f"Authorization: Bearer {server.key}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, keep-alive) of one HTTP/1.1 response; the body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip().lower()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.read()
        return status, False
    return status, headers.get("connection") != "close"


async def drive(server: Server, cell: Cell, body: bytes, seconds: float, *, short: bool) -> None:
    raw = request_bytes(server, body, close=short)
    start_at = time.perf_counter()
    deadline = start_at + seconds
    last_done = start_at

    async def user() -> None:
        nonlocal last_done
        reader = writer = None
        while time.perf_counter() < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", server.port), REQUEST_TIMEOUT
                    )
                    writer.get_extra_info("socket").setsockopt(
                        socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
                    )
                began = time.perf_counter()
                writer.write(raw)
                status, alive = await asyncio.wait_for(read_response(reader), REQUEST_TIMEOUT)
                done = time.perf_counter()
                if status == 200:
                    cell.latencies.append(done - began)
                else:
                    cell.errors += 1
                last_done = max(last_done, done)
                if short or not alive:
                    writer.close()
                    reader = writer = None
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                cell.errors += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(user() for _ in range(cell.concurrency)))
    cell.seconds = max(last_done, deadline) - start_at


def run_cell(server: Server, case: str, concurrency: int, customers, seconds, short) -> Cell:
    cell = Cell(server.name, case, concurrency, len(customers))
    asyncio.run(drive(server, cell, server.body(customers), seconds, short=short))
    return cell


# --------------------------------------------------------------------------- main


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# --------------------------------------------------------------------------- CPU profile


def profile_cpu(home: Path, rounds: int, calls: int) -> None:
    """CPU ms per request per step of ``POST /score``, in this process (no HTTP)."""
    import pandas as pd

    from features.build import build_feature_arrays
    from model.predictor import Prediction
    from serving.loading import load_served_model
    from serving.schemas import ScoreResponse
    from serving.scoring import table_columns
    from serving.service import GC_THRESHOLDS, ChurnService

    served = load_served_model(MODEL_URI, f"sqlite:///{(home / 'mlflow.db').resolve()}")
    scorer, predictor = served.scorer, served.predictor
    request_model = ChurnService.apis["score"].input_spec
    gc.collect()
    gc.freeze()  # as the service does after loading the model
    gc.set_threshold(*GC_THRESHOLDS)
    pool = sample_customers()
    cases = {
        f"1 customer, {CONTACTS_SINGLE} contacts": [
            c for c in pool if len(c["interactions"]) == CONTACTS_SINGLE
        ][:1],
        f"batch of {BATCH}": pool[:BATCH],
    }
    day = dt.date.fromisoformat(AS_OF)
    clock = time.process_time

    def steps(body: bytes, spent: dict[str, float]) -> bytes:
        def timed(name: str, start: float) -> float:
            now = clock()
            spent[name] = spent.get(name, 0.0) + now - start
            return now

        began = clock()
        customers = request_model.model_validate_json(body).customers
        at = timed("validate (pydantic)", began)
        columns = scorer.checked_columns(customers, day)
        at = timed("columns and rules", at)
        customer_table, interaction_table = table_columns(
            columns, scorer.profile_columns, scorer.categorical_profile
        )
        at = timed("tables", at)
        arrays = build_feature_arrays(
            customer_table, interaction_table, pd.Timestamp(day), scorer.feature_settings
        )
        at = timed("features", at)
        ids = list(columns.customer["customer_id"])
        x, values = scorer.model_input(arrays, ids)
        at = timed("feature matrix", at)
        shares = predictor.shares(x)
        probability = predictor.probability_of_shares(shares)
        at = timed("predict", at)
        reasons = predictor.reasons(shares, values, 3)
        at = timed("reasons", at)
        prediction = Prediction(probability, predictor.model.risk_band(probability), reasons)
        scores = scorer.results(ids, prediction, day)
        at = timed("results", at)
        answer = ScoreResponse.model_validate({"scores": scores}).model_dump_json().encode()
        timed("response (pydantic)", at)
        timed("total", began)
        return answer

    table: dict[str, dict[str, float]] = {}
    for case, customers in cases.items():
        body = churnml_body(customers)
        parsed = request_model.model_validate_json(body).customers
        expected = ScoreResponse.model_validate({"scores": scorer.score(parsed, day)})
        assert steps(body, {}) == expected.model_dump_json().encode(), "steps != Scorer.score"
        per_round = []
        for _ in range(rounds):
            spent: dict[str, float] = {}
            for _ in range(calls):
                steps(body, spent)
            per_round.append({k: v / calls * 1000 for k, v in spent.items()})
        table[case] = {k: statistics.median(r[k] for r in per_round) for k in per_round[0]}

    print(
        f"\nCPU ms per request, in process (medians of {rounds} rounds of {calls} calls; "
        f"load average {load_average()})"
    )
    names = list(next(iter(table.values())))
    width = max(map(len, names))
    print("| step".ljust(width + 2) + " | " + " | ".join(table) + " |")
    print("|" + "-" * (width + 2) + "|" + "|".join("-" * (len(c) + 2) for c in table) + "|")
    for name in names:
        cells = " | ".join(f"{table[c][name]:.2f}".rjust(len(c)) for c in table)
        print(f"| {name.ljust(width)} | {cells} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per cell and run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (medians shown)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per server")
    parser.add_argument("--home", type=Path, default=None, help="CHURNML_HOME to (re)use")
    parser.add_argument(
        "--servers", default="churnml,mlflow", help="comma-separated: churnml, mlflow"
    )
    parser.add_argument(
        "--profile-cpu",
        action="store_true",
        help="no servers: CPU ms per request per step of POST /score, in this process",
    )
    parser.add_argument("--rounds", type=int, default=7, help="--profile-cpu: rounds")
    parser.add_argument("--calls", type=int, default=200, help="--profile-cpu: calls per round")
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= 8 or not 0.5 <= args.seconds <= 120 or not 1 <= args.repeat <= 10:
        parser.error("expected 1-8 workers, 0.5-120 seconds and 1-10 repeats")

    home = args.home or Path(tempfile.gettempdir()) / "churnml-serving-bench"
    home = prepare_home(home.resolve())
    if args.profile_cpu:
        profile_cpu(home, args.rounds, args.calls)
        return 0
    tracking = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    bin_dir = Path(sys.executable).parent
    logs = Path(tempfile.mkdtemp(prefix="serving-bench-logs-"))
    key = "bench-" + secrets.token_urlsafe(24)
    base_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    # mlflow models serve runs `uvicorn` from PATH: the venv's.
    base_env["PATH"] = f"{bin_dir}{os.pathsep}{base_env.get('PATH', '')}"
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]

    servers: list[Server] = []
    try:
        if "churnml" in wanted:
            port = free_port()
            env = {**base_env, "CHURNML_HOME": str(home), "CHURNML_API_KEYS": key}
            command = [str(bin_dir / "churnml"), "serve", "--host", "127.0.0.1"]
            command += ["--port", str(port), "--workers", str(args.workers)]
            servers.append(
                Server(
                    "churnml",
                    port,
                    "/score",
                    key,
                    start("churnml", command, env, logs / "churnml.log"),
                    logs / "churnml.log",
                    churnml_body,
                    "/readyz",
                )
            )
        if "mlflow" in wanted:
            port = free_port()
            env = {**base_env, "MLFLOW_TRACKING_URI": tracking, "PYTHONPATH": str(ROOT)}
            command = [str(bin_dir / "mlflow"), "models", "serve", "-m", MODEL_URI]
            command += ["--env-manager", "local", "--workers", str(args.workers)]
            command += ["-p", str(port), "-h", "127.0.0.1"]
            servers.append(
                Server(
                    "mlflow",
                    port,
                    "/invocations",
                    None,
                    start("mlflow", command, env, logs / "mlflow.log"),
                    logs / "mlflow.log",
                    mlflow_body,
                    "/ping",
                )
            )
        for server in servers:
            wait_ready(server)
        print(f"servers up ({args.workers} worker(s) each); logs in {logs}", flush=True)

        pool = sample_customers()
        single = [c for c in pool if len(c["interactions"]) == CONTACTS_SINGLE][:1]
        batch = pool[:BATCH]
        assert len(single) == 1 and len(batch) == BATCH, "the sample world is too small"

        # Same customers, same probabilities.
        answers = {s.name: {**probabilities(s, single), **probabilities(s, batch)} for s in servers}
        if len(answers) == 2:
            a, b = answers["churnml"], answers["mlflow"]
            assert a.keys() == b.keys(), "the servers scored different customers"
            worst = max(abs(a[k] - b[k]) for k in a)
            verdict = "OK" if worst <= 1e-9 else "MISMATCH"
            print(
                f"probabilities, churnml vs mlflow, {len(a)} customers: max |diff| = "
                f"{worst:.2e} ({verdict}, tolerance 1e-9)",
                flush=True,
            )

        # Warm up each server (a few requests of each case), then the measured cells.
        for server in servers:
            for customers in (single, batch):
                for _ in range(5):
                    post(server, server.body(customers))

        short = args.workers > 1
        cases = [("1 customer, 20 contacts", single), (f"batch of {BATCH}", batch)]
        runs: dict[tuple[str, str, int], list[Cell]] = {}
        print(f"load average before: {load_average()}", flush=True)
        for _ in range(args.repeat):
            for case, customers in cases:
                for concurrency in (1, 16):
                    for server in servers:
                        cell = run_cell(server, case, concurrency, customers, args.seconds, short)
                        runs.setdefault((server.name, case, concurrency), []).append(cell)
        print(f"load average after: {load_average()}", flush=True)
        print_table(runs, args)
        return 0
    finally:
        for server in servers:
            stop(server.process)


def print_table(runs: dict[tuple[str, str, int], list[Cell]], args: argparse.Namespace) -> None:
    header = ("server", "case", "conc.", "req/s", "customers/s", "p50 ms", "p99 ms", "errors")
    rows = []
    for (server, case, concurrency), cells in runs.items():
        rps = statistics.median(c.rps for c in cells)
        per = cells[0].customers_per_request
        rows.append(
            (
                server,
                case,
                str(concurrency),
                f"{rps:,.0f}",
                f"{rps * per:,.0f}",
                f"{statistics.median(c.quantile(0.50) for c in cells):.1f}",
                f"{statistics.median(c.quantile(0.99) for c in cells):.1f}",
                str(sum(c.errors for c in cells)),
            )
        )
    order = {"churnml": 0, "mlflow": 1}
    rows.sort(key=lambda r: (r[1], int(r[2]), order.get(r[0], 9)))
    print(
        f"\n{args.workers} worker(s) per server, {args.seconds:g} s per cell, medians of "
        f"{args.repeat} run(s); errors summed"
    )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |")
    by = {(r[0], r[1], r[2]): float(r[3].replace(",", "")) for r in rows}
    for case in {r[1] for r in rows}:
        a, b = by.get(("churnml", case, "16")), by.get(("mlflow", case, "16"))
        if a and b:
            print(f"ratio churnml/mlflow at concurrency 16, {case}: {a / b:.1f}x")


if __name__ == "__main__":
    sys.exit(main())
