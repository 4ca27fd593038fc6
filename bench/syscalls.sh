#!/usr/bin/env bash
# System calls per /fact request, counted by the kernel's tracepoints (perf stat), for
# printerfacts (on each event loop), nginx (`return 200`) and the two floors under the same h2load load (c=64, Unix
# socket). Most of every server's CPU time is spent in these calls, so their count explains much
# of the CPU per request that bench.py measures. Needs root (tracepoints); without perf it
# says so on stderr and prints nothing.
#   bench/syscalls.sh [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-200000}
command -v perf >/dev/null || { echo "syscalls: perf not installed, skipped" >&2; exit 0; }

work=$(mktemp -d /tmp/pf-sys.XXXXXX)
trap 'rm -rf "$work"' EXIT
source bench/nginx-fact.sh
nginx_fact_conf "$work" "$work/nginx.sock" >"$work/nginx.conf"

calls=(recvfrom read sendmsg writev write epoll_wait epoll_ctl io_uring_enter)
events=$(printf 'syscalls:sys_enter_%s,' "${calls[@]}")

count() {  # NAME SOCKET STOP-SIGNAL CMD...
  local name=$1 sock=$2 stop=$3 file=${1//\//_}
  shift 3
  rm -f "$sock"
  taskset -c 0 "$@" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
  taskset -c 1 h2load --h1 -B "unix:$sock" -n 20000 -c 64 -t 1 http://localhost/fact >/dev/null
  # Plus the reads that found nothing to read (recvfrom returning -EAGAIN).
  perf stat -x, -e "${events%,}" -e syscalls:sys_exit_recvfrom --filter 'ret == -11' \
    -p "$pid" -o "$work/$file.csv" &
  local perf_pid=$!
  sleep 0.5
  taskset -c 1 h2load --h1 -B "unix:$sock" -n "$requests" -c 64 -t 1 http://localhost/fact >/dev/null
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
  kill "-$stop" "$pid" 2>/dev/null || true
  wait "$pid" || true
  awk -F, -v name="$name" -v n="$requests" '
    /syscalls:sys_enter_/ { sub("syscalls:sys_enter_", "", $3); if ($1 > 0) { per[$3] = $1 / n; total += $1 / n } }
    /syscalls:sys_exit_recvfrom/ { if ($1 > 0) eagain = $1 / n }
    END {
      if (total == 0) { print "syscalls: " name " not measured (no tracepoint counts)"; exit }
      line = sprintf("syscalls per /fact request (%s): %.2f:", name, total)
      split("recvfrom read sendmsg writev write epoll_wait epoll_ctl io_uring_enter", order, " ")
      for (i = 1; i <= 8; i++) if (order[i] in per) line = line sprintf(" %s %.3f", order[i], per[order[i]])
      if (eagain > 0) line = line sprintf(" (recvfrom with EAGAIN %.3f)", eagain)
      print line
    }' "$work/$file.csv"
}

count printerfacts "$work/pf.sock" TERM build/release/printerfacts --threads 1 --access-log off --listen "unix:$work/pf.sock"
count printerfacts/epoll "$work/pfe.sock" TERM build/release/printerfacts --threads 1 --access-log off \
  --io-backend epoll --listen "unix:$work/pfe.sock"
count nginx "$work/nginx.sock" QUIT nginx -c "$work/nginx.conf" -e "$work/nginx-error.log"
count floor "$work/floor.sock" TERM bench/out/peers/floor-peer "unix:$work/floor.sock"
count floor/io_uring "$work/ufloor.sock" TERM bench/out/peers/uring-floor-peer "unix:$work/ufloor.sock"
