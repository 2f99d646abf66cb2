#!/usr/bin/env bash
# Full-size peer workloads: generate (seeded, `citywatch-bench gen-<workload>`),
# exact answers (`citywatch-bench reference-<workload>`), Parquet conversion, a
# correctness check of every configuration against the reference, then
# whole-process wall time, median of 5 runs, for 1 and 2 workers, CSV and Parquet.
# Prints one markdown table row per configuration.
#   bench/peers.sh [DIR]   (default /tmp/citywatch-peers; inputs are reused)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-/tmp/citywatch-peers}
bin=$here/../target/release/citywatch-bench
runs=${RUNS:-5}
[ -n "${SKIP_BUILD:-}" ] || (cd "$here/.." && cargo build --release -q -p citywatch-bench --bin citywatch-bench)
mkdir -p "$dir/fanout" "$dir/window-count"
for w in fanout window-count; do
  d=$dir/$w
  [ -s "$d/events.csv" ] || "$bin" "gen-$w" --out "$d/events.csv"
  [ -s "$d/ref_out.csv" ] || "$bin" "reference-$w" --input "$d/events.csv" --out "$d/ref_out.csv"
  # Always converted again: the layout is part of what is measured (~2 s).
  "$bin" convert --input "$d/events.csv" --out "$d/events.parquet" 2>/dev/null
done
rows() { case $1 in fanout) echo 2000000;; window-count) echo 1000000;; esac; }
echo "| workload | input | workers | wall s (median of $runs) | events/s | CPU s (user+sys, median) | output = reference | load avg |"
echo "|---|---|---|---|---|---|---|---|"
for w in fanout window-count; do
  d=$dir/$w
  for fmt in csv parquet; do
    for n in 1 2; do
      out=$d/out-$fmt-$n.csv
      "$bin" "$w" --input "$d/events.$fmt" --out "$out" --workers "$n" 2>/dev/null
      if cmp -s "$out" "$d/ref_out.csv"; then same=yes; else same=NO; fi
      times=(); cpus=()
      for _ in $(seq "$runs"); do
        t0=$(date +%s.%N)
        /usr/bin/time -f "%U %S" -o "$dir/cpu" "$bin" "$w" --input "$d/events.$fmt" --out "$out" --workers "$n" 2>/dev/null
        t1=$(date +%s.%N)
        times+=("$(echo "$t1 - $t0" | bc -l)")
        cpus+=("$(awk '{print $1 + $2}' "$dir/cpu")")
      done
      cpu=$(printf '%s\n' "${cpus[@]}" | sort -g | sed -n "$(( (runs + 1) / 2 ))p")
      med=$(printf '%s\n' "${times[@]}" | sort -g | sed -n "$(( (runs + 1) / 2 ))p")
      eps=$(echo "$(rows "$w") / $med" | bc -l)
      load=$(cut -d' ' -f1 /proc/loadavg)
      printf '| %s | %s | %d | %.3f | %.2fM | %.2f | %s | %s |\n' "$w" "$fmt" "$n" "$med" "$(echo "$eps / 1000000" | bc -l)" "$cpu" "$same" "$load"
    done
  done
done
