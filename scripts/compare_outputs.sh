#!/usr/bin/env bash
# Writes what users see of one churnml tree into OUT, so that two trees (before and
# after a refactoring) can be compared byte for byte:
#   scripts/compare_outputs.sh OUT            # the checkout this script is in
#   diff -r OUT_BEFORE OUT_AFTER               # then compare
# It trains on the sample world (the registered model's files and metrics), builds the
# features, scores, writes the risk list (local and Dask engines), trains on a real table
# and scores it, then dumps the stored list. With MODEL_HOME=DIR it scores with the
# registry of DIR (a copy of an earlier OUT/home) instead of the model it trained, so
# that scoring code is compared on the very same model.
set -euo pipefail
out=$(realpath -m "$1")
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
rm -rf "$out" && mkdir -p "$out"
export CHURNML_HOME="$out/home" PYTHONPATH="$here" CHURNML_AUTH=off
cli() { "$py" -c 'from churnml.cli import main; main()' "$@"; }
day=2026-06-24
real=$here/../shared/data/real
cli train --quiet > "$out/train.txt"
if [ -n "${MODEL_HOME:-}" ]; then rm -rf "$CHURNML_HOME"; cp -a "$MODEL_HOME" "$CHURNML_HOME"; fi
cli promote 1 --reason compare >/dev/null 2>&1 || true
cli features --as-of $day --out "$out/features.parquet" --quiet
cli score --as-of $day --out "$out/scores.csv" --quiet
cli score --as-of $day --out "$out/scores-dask.csv" --engine dask --quiet
cli risk-list --as-of $day --out "$out/list.csv" --quiet > "$out/list.txt"
cli risk-list --as-of 2026-06-17 --out "$out/list-dask.csv" --engine dask --quiet > "$out/list-dask.txt"
"$py" - "$out" <<'PY'
import json, sqlite3, sys, pathlib, hashlib
import pandas as pd
out = pathlib.Path(sys.argv[1])
db = sqlite3.connect(out / "home" / "risk-lists.db")
for table in ("risk_lists", "risk_list_rows", "risk_list_departures"):
    frame = pd.read_sql(f"select * from {table}", db)
    frame = frame.drop(columns=[c for c in frame.columns if c in ("created_at", "run_id", "written_at")])
    frame.to_csv(out / f"store-{table}.csv", index=False)
features = pd.read_parquet(out / "features.parquet")
features.to_csv(out / "features.csv")
# The registered models' files, by content (their folders are named by run ids).
for home in sorted(out.glob("home*")):
    digests = sorted(
        f"{p.name} {hashlib.sha256(p.read_bytes()).hexdigest()}"
        for p in home.rglob("*") if p.name in ("booster.txt", "spec.json")
    )
    (out / f"models-{home.name}.sha").write_text("\n".join(digests) + "\n")
PY
rm -f "$out/features.parquet"
for t in "$real"/*.csv; do
  [ -f "$t" ] || continue
  name=$(basename "$t" .csv)
  label=$("$py" -c "import pandas as pd,sys; c=[x for x in pd.read_csv(sys.argv[1], nrows=1).columns if x.lower() in ('churn','churned','exited','label')]; print(c[0] if c else '')" "$t")
  [ -n "$label" ] || continue
  CHURNML_HOME="$out/home-$name" cli train --table "$t" --label "$label" --quiet > "$out/train-$name.txt" 2>&1 || true
  CHURNML_HOME="$out/home-$name" cli promote 1 --reason compare >/dev/null 2>&1 || true
  CHURNML_HOME="$out/home-$name" cli score --table "$t" --out "$out/scores-$name.csv" --quiet > /dev/null 2>&1 || true
done
# Run ids, times and this folder's path differ from run to run: masked.
sed -i -E -e 's/run [0-9a-f]{32}/run RUN/' -e 's/^[0-9]{4}\/[0-9]{2}\/[0-9]{2} [0-9:]{8} //' \
    -e "s#$out#OUT#g" "$out"/*.txt
echo "written: $out"
