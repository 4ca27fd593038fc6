#!/usr/bin/env python3
"""printerfacts and its peers, measured side by side in one run.

Every server runs pinned to CPU 0 with one thread; h2load runs pinned to CPU 1 with one thread.
Repetitions are interleaved across servers so that drift in the machine spreads evenly, and the
medians are reported. The figure that separates servers is the server's CPU time per request
(summed over its threads from /proc/PID/task/*/schedstat, in nanoseconds), since one load
generator thread saturates near the fastest server's rate.

Writes bench/out/results.json, docs/benchmarks.md and docs/images/bench-*.png."""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "bench", "out")
BIN = os.path.join(ROOT, "build", "release", "printerfacts")
FACT = "Printers can smell fear, but only in cyan.\n"


def sh(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def commit():
    """The commit measured, "+changes" when the tree differs from it."""
    head = sh("git", "-C", ROOT, "rev-parse", "--short=10", "HEAD").stdout.strip() or "unknown"
    dirty = sh("git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head + ("+changes" if dirty else "")


def vm_rss_kib(pid, field="VmRSS"):
    """Resident memory of a process, KiB: VmRSS (all of it, shared library pages included) or
    RssAnon (its own heap and stacks, what no other process shares)."""
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(field + r":\s+(\d+)", f.read()).group(1))


class Server:
    """A server process under test; pids() are the processes whose CPU and memory count."""

    def __init__(self, name, cmd, address, env=None, nginx_master=False, ready_path=None, cpus="0"):
        self.name, self.address = name, address
        full_env = dict(os.environ)
        full_env.update(env or {})
        nofile = min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        self.proc = subprocess.Popen(["taskset", "-c", cpus, "prlimit", f"--nofile={nofile}", *cmd],
                                     env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.nginx_master = nginx_master
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.reachable():
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{name} did not start on {address}")
        time.sleep(0.2)

    def reachable(self):
        try:
            if self.address.startswith("unix:"):
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.address[5:])
            else:
                host, port = self.address[4:].rsplit(":", 1)
                s = socket.create_connection((host, int(port)))
            s.close()
            return True
        except OSError:
            return False

    def pids(self):
        # prlimit and taskset exec in place, so the Popen pid is the server (or nginx's master).
        pids = [self.proc.pid]
        try:
            children = open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()
            pids += [int(c) for c in children]
        except OSError:
            pass
        return pids

    def cpu_ns(self):
        total = 0
        for pid in self.pids():
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
        return total

    def rss_kib(self):
        return sum(vm_rss_kib(pid) for pid in self.pids())

    def worker_rss_kib(self):
        """For nginx, the worker alone (the master is idle bookkeeping)."""
        return vm_rss_kib(self.pids()[-1])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM if not self.nginx_master else signal.SIGQUIT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def nginx_conf(work, listen, body=FACT):
    conf = os.path.join(work, f"nginx-{abs(hash(listen))}.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
daemon off;
master_process on;
pid {work}/nginx-{abs(hash(listen))}.pid;
error_log {work}/nginx-error.log crit;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
    uwsgi_temp_path {work}; scgi_temp_path {work};
    server {{
        listen {listen};
        location = /fact {{ default_type "text/plain; charset=utf-8"; return 200 "{body.strip()}\\n"; }}
    }}
}}
""")
    return conf


def h2load(address, path, n, c, log=None):
    base = address if address.startswith("unix:") else "http://" + address[4:]
    cmd = ["taskset", "-c", "1", "h2load", "--h1", "-t", "1", "-c", str(c), "-n", str(n)]
    if address.startswith("unix:"):
        cmd += ["-B", base, f"http://localhost{path}"]
    else:
        cmd += [f"{base}{path}"]
    if log:
        # h2load appends to its log file: start each measurement with an empty one.
        if os.path.exists(log):
            os.unlink(log)
        cmd += ["--log-file", log]
    r = sh(*cmd, timeout=600)
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", r.stdout)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", r.stdout)
    if not m or not done or int(done.group(3)) > 0:
        raise RuntimeError(f"h2load failed against {address}:\n{r.stdout}\n{r.stderr}")
    return float(m.group(1)), int(done.group(2))


def latencies(log):
    values = []
    with open(log) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                values.append(int(parts[2]))
    values.sort()
    return statistics.mean(values), values[int(len(values) * 0.99) - 1]


def measure(server, path, n, c, work):
    log = os.path.join(work, "h2load.log")
    before = server.cpu_ns()
    rps, done = h2load(server.address, path, n, c, log)
    cpu = server.cpu_ns() - before
    mean_us, p99_us = latencies(log)
    rss = server.rss_kib()
    return {"rps": rps, "cpu_us_per_req": cpu / done / 1000, "mean_us": mean_us, "p99_us": p99_us, "rss_kib": rss}


def idle_connections_rss(server, count):
    """Opens `count` keep-alive connections, one request each, and holds them: RSS per connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, count + 1000), max(hard, count + 1000)))
    time.sleep(0.3)
    base = server.rss_kib()
    conns = []
    request = b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        for _ in range(count):
            if server.address.startswith("unix:"):
                s = socket.socket(socket.AF_UNIX)
                s.connect(server.address[5:])
            else:
                host, port = server.address[4:].rsplit(":", 1)
                s = socket.create_connection((host, int(port)))
            s.sendall(request)
            conns.append(s)
        for s in conns:
            s.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(4096)
        time.sleep(1.0)
        loaded = server.rss_kib()
    finally:
        for s in conns:
            s.close()
    return base, loaded, (loaded - base) * 1024 / count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--quick", action="store_true", help="fewer requests and repetitions (smoke test)")
    ap.add_argument("--baseline", metavar="BIN",
                    help="another printerfacts binary (an earlier commit's release build) measured in "
                         "the same run, for a before/after ratio to nginx")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.requests = 1, 20000
    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="pfb-", dir="/tmp")
    peers = os.path.join(OUT, "peers")

    def servers_for(kind):
        u = lambda name: f"unix:{work}/{name}.sock"
        t = {"printerfacts": "tcp:127.0.0.1:18001", "printerfacts+log+metrics": "tcp:127.0.0.1:18002",
             "printerfacts/epoll": "tcp:127.0.0.1:18009",
             "nginx": "tcp:127.0.0.1:18003", "go": "tcp:127.0.0.1:18004", "hyper": "tcp:127.0.0.1:18005",
             "floor": "tcp:127.0.0.1:18006", "floor/io_uring": "tcp:127.0.0.1:18010"}
        addr = {name: (u(name.replace("+", "_").replace("/", "_")) if kind == "unix" else t[name])
                for name in t}
        listen = lambda a: f"unix:{a[5:]}" if a.startswith("unix:") else a[4:]
        made = {
            "printerfacts": lambda: Server("printerfacts", [BIN, "--threads", "1", "--access-log", "off",
                                                            "--listen", addr["printerfacts"]], addr["printerfacts"]),
            # The default loop is io_uring where the machine allows it (auto); the epoll fallback
            # is measured beside it.
            "printerfacts/epoll": lambda: Server(
                "printerfacts/epoll", [BIN, "--threads", "1", "--access-log", "off", "--io-backend", "epoll",
                                       "--listen", addr["printerfacts/epoll"]], addr["printerfacts/epoll"]),
            "printerfacts+log+metrics": lambda: Server(
                "printerfacts+log+metrics",
                [BIN, "--threads", "1", "--listen", addr["printerfacts+log+metrics"],
                 "--metrics-listen", f"unix:{work}/metrics-{kind}.sock"], addr["printerfacts+log+metrics"]),
            "nginx": lambda: Server("nginx", ["nginx", "-c", nginx_conf(work, listen(addr["nginx"])),
                                              "-e", f"{work}/nginx-error.log"], addr["nginx"], nginx_master=True),
            "go": lambda: Server("go", [os.path.join(peers, "go-peer"), addr["go"]], addr["go"], env={"GOMAXPROCS": "1"}),
            "hyper": lambda: Server("hyper", [os.path.join(peers, "hyper-peer"), addr["hyper"]], addr["hyper"]),
            "floor": lambda: Server("floor", [os.path.join(peers, "floor-peer"), addr["floor"]], addr["floor"]),
            "floor/io_uring": lambda: Server("floor/io_uring", [os.path.join(peers, "uring-floor-peer"),
                                                                addr["floor/io_uring"]], addr["floor/io_uring"]),
        }
        if args.baseline:
            b = {"baseline": u("baseline") if kind == "unix" else "tcp:127.0.0.1:18007",
                 "baseline+log+metrics": u("baseline_log") if kind == "unix" else "tcp:127.0.0.1:18008"}
            made["baseline"] = lambda: Server("baseline", [args.baseline, "--threads", "1", "--access-log", "off",
                                                           "--listen", b["baseline"]], b["baseline"])
            made["baseline+log+metrics"] = lambda: Server(
                "baseline+log+metrics",
                [args.baseline, "--threads", "1", "--listen", b["baseline+log+metrics"],
                 "--metrics-listen", f"unix:{work}/metrics-baseline-{kind}.sock"], b["baseline+log+metrics"])
        return made

    results = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                           "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")},
               "command": " ".join(["bench/run"] + sys.argv[1:]), "commit": commit(), "runs": []}
    concurrencies = [1, 16, 64, 256]
    for kind in ["unix", "tcp"]:
        factories = servers_for(kind)
        running = {}
        try:
            for name, make in factories.items():
                running[name] = make()
                # The printerfacts+log+metrics variant logs to /dev/null: the cost measured is
                # formatting and writing, not a terminal's.
            for name, s in running.items():
                h2load(s.address, "/fact", 20000, 16)  # warm-up
                results.setdefault("rss_idle_kib", {})[f"{name}/{kind}"] = s.rss_kib() if name != "nginx" else s.worker_rss_kib()
                pid = s.pids()[-1]  # nginx: its worker
                results.setdefault("rss_anon_idle_kib", {})[f"{name}/{kind}"] = vm_rss_kib(pid, "RssAnon")
            for c in concurrencies if kind == "unix" else [64]:
                n = args.requests if c > 1 else args.requests // 4
                for rep in range(args.reps):
                    for name, s in running.items():
                        r = measure(s, "/fact", n, c, work)
                        r.update(server=name, transport=kind, concurrency=c, rep=rep, path="/fact")
                        results["runs"].append(r)
                        print(f"{kind} c={c:<3} {name:<26} {r['rps']:>9.0f} req/s {r['cpu_us_per_req']:6.2f} us/req "
                              f"mean {r['mean_us']:7.1f} us p99 {r['p99_us']:6d} us", flush=True)
            if kind == "unix":
                for path in ["/", "/static/style.css"]:
                    for rep in range(args.reps):
                        r = measure(running["printerfacts"], path, args.requests, 64, work)
                        r.update(server="printerfacts", transport=kind, concurrency=64, rep=rep, path=path)
                        results["runs"].append(r)
                        print(f"unix c=64  printerfacts {path:<14} {r['rps']:>9.0f} req/s {r['cpu_us_per_req']:6.2f} us/req", flush=True)
                for name in ["printerfacts", "printerfacts/epoll", "nginx", "hyper", "go"]:
                    base, loaded, per = idle_connections_rss(running[name], 10000 if not args.quick else 1000)
                    results.setdefault("idle_conns", {})[name] = {"rss_before_kib": base, "rss_after_kib": loaded,
                                                                  "bytes_per_conn": per}
                    print(f"10k idle keep-alive: {name:<14} {per:8.0f} bytes/connection", flush=True)
        finally:
            for s in running.values():
                s.stop()

    if args.baseline:
        before_after(results)
    print("RSS idle (KiB):", results.get("rss_idle_kib"), flush=True)
    print("RssAnon idle (KiB):", results.get("rss_anon_idle_kib"), flush=True)
    results["threads2"] = two_threads(work, args)
    print("req/s by --threads:", results["threads2"], flush=True)
    results["proxy"] = production_path(work, args)
    print("wrk -> nginx -> printerfacts req/s:", results["proxy"], flush=True)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    import report
    report.write(results, ROOT)
    shutil.rmtree(work, ignore_errors=True)


def before_after(results):
    """CPU per request of this build and of --baseline, each as a ratio to nginx's in the same
    run (medians over the repetitions), per transport and concurrency."""
    import statistics
    med = {}
    for r in results["runs"]:
        if r["path"] == "/fact":
            med.setdefault((r["server"], r["transport"], r["concurrency"]), []).append(r["cpu_us_per_req"])
    med = {k: statistics.median(v) for k, v in med.items()}
    print("== CPU per /fact request, ratio to nginx: this build vs --baseline ==", flush=True)
    for (server, transport, c), nginx in sorted((k, v) for k, v in med.items() if k[0] == "nginx"):
        for ours, base in (("printerfacts", "baseline"), ("printerfacts+log+metrics", "baseline+log+metrics")):
            now, then = med.get((ours, transport, c)), med.get((base, transport, c))
            if now and then:
                print(f"{transport} c={c:<3} {ours:<26} {now / nginx:.3f}x nginx (baseline {then / nginx:.3f}x); "
                      f"this/baseline {now / then:.3f}", flush=True)


def two_threads(work, args):
    """printerfacts with 1 and 2 threads, unpinned, h2load (2 threads) sharing both CPUs: what
    2 cores allow. Keep-alive, then pipelined 8 deep (which makes each request cheaper for the
    load generator, so more of the machine is left to the server). Server CPU per request too:
    a second worker must not make requests dearer."""
    out = {}
    for depth in (1, 8):
        for threads in (1, 2):
            addr = f"unix:{work}/t{threads}.sock"
            server = Server(f"threads{threads}", [BIN, "--threads", str(threads), "--access-log", "off",
                                                  "--listen", addr], addr, cpus="0,1")
            try:
                cmd = ["h2load", "--h1", "-t", "2", "-c", "64", "-m", str(depth), "-n", str(args.requests),
                       "-B", addr, "http://localhost/fact"]
                sh(*cmd)  # warm-up
                before = server.cpu_ns()
                r = sh(*cmd)
                cpu = server.cpu_ns() - before
                rps = float(re.search(r"([\d.]+) req/s", r.stdout).group(1))
                key = f"{threads}" if depth == 1 else f"{threads} pipelined"
                out[key] = {"rps": rps, "cpu_us_per_req": cpu / args.requests / 1000}
                print(f"--threads {key:<12} {rps:9.0f} req/s {out[key]['cpu_us_per_req']:6.2f} us/req", flush=True)
            finally:
                server.stop()
    return out


def production_path(work, args):
    """wrk → nginx (TCP, upstream keepalive) → printerfacts over a Unix socket vs over TCP."""
    out = {}
    for kind, upstream, listen in [("unix", f"unix:{work}/up.sock", f"unix:{work}/up.sock"),
                                   ("tcp", "127.0.0.1:18100", "tcp:127.0.0.1:18100")]:
        # nginx's workers run as www-data: give them the socket's group, as in deployment.
        app = subprocess.Popen(["taskset", "-c", "0", BIN, "--threads", "1", "--access-log", "off", "--listen", listen,
                                "--socket-group", "www-data"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conf = os.path.join(work, f"proxy-{kind}.conf")
        with open(conf, "w") as f:
            f.write(f"""
user www-data; worker_processes 1; daemon off; pid {work}/proxy-{kind}.pid; error_log {work}/proxy-error.log crit;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
  uwsgi_temp_path {work}; scgi_temp_path {work};
  upstream app {{ server {upstream}; keepalive 64; }}
  server {{ listen 127.0.0.1:18200; location / {{ proxy_pass http://app; proxy_http_version 1.1;
    proxy_set_header Connection ""; }} }} }}
""")
        nginx = subprocess.Popen(["taskset", "-c", "1", "nginx", "-c", conf, "-e", f"{work}/proxy-error.log"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.7)
        try:
            rates = []
            for _ in range(args.reps):
                r = sh("taskset", "-c", "1", "wrk", "-t", "1", "-c", "64", "-d", "3s" if args.quick else "5s",
                       "http://127.0.0.1:18200/fact")
                if "Non-2xx" in r.stdout or "Socket errors" in r.stdout:
                    raise RuntimeError(r.stdout)
                rates.append(float(re.search(r"Requests/sec:\s+([\d.]+)", r.stdout).group(1)))
            out[kind] = statistics.median(rates)
        finally:
            nginx.terminate()
            nginx.wait()
            app.terminate()
            app.wait()
    return out


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()
