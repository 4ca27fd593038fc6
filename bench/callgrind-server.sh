#!/usr/bin/env bash
# Instructions per /fact request in the real server: its worker thread under callgrind, one
# thread, over the Unix socket, with h2load as the client. Everything the worker runs counts
# (reading, parsing, routing, writing, Asio's event loop), the kernel does not. Start-up and
# shutdown are cancelled out by serving 2,000 and 22,000 requests and dividing the difference
# by 20,000. The whole process is counted too: work moved off the worker to another thread (the
# log's writer) must not disappear from the figure.
#   PRINTERFACTS_BIN=path/to/printerfacts measures another build (an earlier one, say).
#   PRINTERFACTS_IO_BACKEND=epoll|io_uring chooses the event loop (the server reads it).
#   bench/callgrind-server.sh              access log off
#   bench/callgrind-server.sh --log        access log on (to /dev/null) and metrics on
#   bench/callgrind-server.sh --log json   the same in another --access-log-format
#   bench/callgrind-server.sh --nginx      nginx's `return 200` peer, for scale: one process
#                                          (master_process off), no access log, whole program
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PRINTERFACTS_BIN:-$PWD/build/release/printerfacts}
extra=(--access-log off)
label="access log off"
if [[ "${1:-}" == "--log" ]]; then
  extra=(--metrics-listen unix:METRICS)
  label="access log and metrics on"
  if [[ -n "${2:-}" ]]; then
    extra+=(--access-log-format "$2")
    label="access log ($2) and metrics on"
  fi
fi

work=$(mktemp -d /tmp/pf-cg.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [[ "${1:-}" == "--nginx" ]]; then
  label="nginx return 200, for comparison"
  source bench/nginx-fact.sh
  nginx_fact_conf "$work" "$work/pf.sock" >"$work/nginx.conf"
fi

count() {
  local out=$work/callgrind.out sock=$work/pf.sock
  rm -f "$out" "$sock"
  local args=("${extra[@]/METRICS/$work/metrics.sock}")
  if [[ -f $work/nginx.conf ]]; then
    valgrind --tool=callgrind --callgrind-out-file="$out" nginx -c "$work/nginx.conf" \
      -e "$work/nginx-error.log" >/dev/null 2>&1 &
  else
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --threads 1 --listen "unix:$sock" \
      "${args[@]}" >/dev/null 2>&1 &
  fi
  local pid=$!
  for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
  h2load --h1 -B "unix:$sock" -n "$1" -c 16 http://localhost/fact >/dev/null
  if [[ -f $work/nginx.conf ]]; then
    kill -QUIT "$pid"
    wait "$pid" || true
    # One process does everything; start-up and exit cancel out in the difference below.
    callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
  else
    kill -TERM "$pid"
    wait "$pid" || true
    # The worker thread's whole cost (its event loop, inclusive), and the whole process's.
    callgrind_annotate --inclusive=yes "$out" 2>/dev/null |
      awk '/scheduler::run|Worker::run_ring/ && !found {gsub(",", "", $1); worker = $1; found = 1}
           /PROGRAM TOTALS/ {gsub(",", "", $1); total = $1}
           END {print worker, total}'
  fi
}
read -r small small_total <<<"$(count 2000)"
read -r large large_total <<<"$(count 22000)"
echo "server instructions per /fact request ($label): $(( (large - small) / 20000 ))"
if [[ -n "${large_total:-}" ]]; then
  echo "whole process, every thread ($label): $(( (large_total - small_total) / 20000 ))"
fi
