#!/usr/bin/env bash
# Instructions per /fact request, in process (parse -> route -> serialize), counted by callgrind:
# repeatable on a noisy machine with no CPU counters. Start-up is cancelled out by running
# 1,000 and 11,000 requests and dividing the difference by 10,000.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release/bench/printerfacts_micro_bench
count() {
  local out
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --iterations "$1" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
  rm -f "$out"
}
small=$(count 1000)
large=$(count 11000)
echo "instructions per /fact request: $(( (large - small) / 10000 ))"
