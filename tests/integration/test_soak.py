"""A bounded soak: minutes of mixed traffic with hostile requests mixed in, watching the server's
descriptors and memory. Nothing may crash, every descriptor must come back once clients leave,
and memory must level off: growth between the end of the warm-up and the end of the run stays
under a stated bound. SOAK_SECONDS sets the length (default 90)."""

import os
import random
import re
import socket
import subprocess
import threading
import time

from conftest import read_response, rss_kib, unix_connect, wait_until
from test_hostile import CASES

SECONDS = float(os.environ.get("SOAK_SECONDS", "90"))
# Growth allowed between the sample at the end of the first quarter (caches, allocator arenas
# and per-thread buffers are warm by then) and the end. A leak of one small allocation per
# request would pass it within seconds at these rates: ~100 bytes x 10^5 requests = 10 MiB.
RSS_GROWTH_BOUND_KIB = 4096
URIS = ["/fact", "/fact", "/fact", "/", "/static/style.css", "/static/favicon.svg", "/healthz",
        "/metrics", "/no/such/page", "/static/../../etc/passwd"]


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Worker(threading.Thread):
    """Runs `step` until `stop` is set, counting outcomes; an exception ends the test."""

    def __init__(self, stop, step):
        super().__init__(daemon=True)
        self.stop, self.step = stop, step
        self.count = 0
        self.failure = None

    def run(self):
        try:
            while not self.stop.is_set():
                self.step()
                self.count += 1
                time.sleep(0.002)  # a steady mix, not a flood: other suites run beside this one
        except Exception as e:  # reported by the test, with the step's name
            self.failure = f"{self.step.__name__}: {type(e).__name__}: {e}"


def test_soak_mixed_traffic_no_crash_no_fd_or_memory_growth(start, workdir):
    # Deadlines short enough that the abandoned clients below are reclaimed by them many times
    # over, and long enough that a loaded 2-core machine (sanitizers, other suites beside this
    # one) never stalls a request that is sent whole past them: at 1s one did, once.
    server = start("--listen", "unix:./pf.sock", "--listen", "tcp:127.0.0.1:0", "--threads", "2",
                   "--metrics-on-main", "--header-timeout", "3s", "--idle-timeout", "5s",
                   "--access-log", "off", env={"ASAN_OPTIONS": "quarantine_size_mb=4"})
    pid = server.proc.pid
    path = os.path.join(workdir, "pf.sock")
    port = server.tcp_port()
    # Counted after one exchange: READY=1 reaches the test a moment before sd_notify() has
    # closed the datagram socket it sent it on, which would count as a descriptor of the start.
    warm = unix_connect(path)
    warm.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(warm)[0] == 200
    with_warm = fd_count(pid)  # the warm-up connection is open on both sides
    warm.close()
    wait_until(lambda: fd_count(pid) < with_warm, "the server closed the warm-up connection")
    fds_at_start = fd_count(pid)
    rng = random.Random(1)

    uri_file = os.path.join(workdir, "uris.txt")
    with open(uri_file, "w") as f:
        f.write("\n".join(f"http://localhost{u}" for u in URIS) + "\n")
    # Keep-alive load across every route, rate-limited so the other clients get their share.
    load = subprocess.Popen(["h2load", "--h1", "-B", f"unix:{path}", "-c", "16", "--rps", "100",
                             "-D", str(int(SECONDS)), "-i", uri_file],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def one_request_per_connection():
        # New connections, alternating transports, each with one request and a clean close.
        if rng.random() < 0.5:
            s = unix_connect(path)
        else:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(f"GET {rng.choice(URIS)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status, _, _, _ = read_response(s)
        assert status in (200, 404), status
        s.close()

    def hostile():
        # A malformed request from the hostile table; the answer must be the one it expects.
        name, raw, status, _ = rng.choice(CASES)
        s = unix_connect(path)
        try:
            s.sendall(raw)
            if status is None:
                s.settimeout(5)
                while s.recv(65536):
                    pass
            else:
                got, _, _, line = read_response(s)
                assert got == status, line
        except Exception as e:
            raise AssertionError(f"case {name!r}: {type(e).__name__}: {e}") from e
        finally:
            s.close()

    def abandoned():
        # Half a request, then the client goes away or just stops: the deadlines must reclaim it.
        s = unix_connect(path)
        s.sendall(b"GET /fact HTTP/1.1\r\nHost: x\r\n")
        if rng.random() < 0.5:
            s.close()
        else:
            # Held for longer than the header timeout (~40 held a second), so that the
            # server's deadline, not the client, ends most of them.
            abandoned.held.append(s)
            if len(abandoned.held) > 300:
                abandoned.held.pop(0).close()
        time.sleep(0.01)
    abandoned.held = []

    stop = threading.Event()
    workers = [Worker(stop, one_request_per_connection), Worker(stop, hostile), Worker(stop, abandoned)]
    for w in workers:
        w.start()

    samples = []  # (seconds since start, fds, RSS KiB)
    started = time.monotonic()
    while time.monotonic() - started < SECONDS:
        time.sleep(min(5, SECONDS / 12))
        assert server.proc.poll() is None, server.stderr()
        samples.append((time.monotonic() - started, fd_count(pid), rss_kib(pid)))
        assert all(w.failure is None for w in workers), ([w.failure for w in workers], server.stderr()[-4000:])
    stop.set()
    for w in workers:
        w.join(timeout=15)
    for s in abandoned.held:
        s.close()
    out = load.communicate(timeout=60)[0].decode()

    # Once every client is gone, the server holds no more descriptors than it started with.
    deadline = time.monotonic() + 30
    while fd_count(pid) > fds_at_start and time.monotonic() < deadline:
        time.sleep(0.1)
    fds_after = fd_count(pid)

    warm = next(s for s in samples if s[0] >= SECONDS / 4)
    growth = samples[-1][2] - warm[2]
    counts = {w.step.__name__: w.count for w in workers}
    print(f"soak {SECONDS:.0f}s: {counts}; h2load: {out.strip().splitlines()[-9]}")
    print(f"fds: start {fds_at_start}, peak {max(s[1] for s in samples)}, after {fds_after}")
    print(f"RSS KiB: at {warm[0]:.0f}s {warm[2]}, end {samples[-1][2]}, peak {max(s[2] for s in samples)}, "
          f"growth {growth} (bound {RSS_GROWTH_BOUND_KIB})")
    print("samples (s, fds, RSS KiB):", [(round(t), f, r) for t, f, r in samples])

    assert all(w.failure is None for w in workers), [w.failure for w in workers]
    assert all(c > 0 for c in counts.values()), counts
    # h2load counts the 404s of the unknown and the traversal URIs as "failed"; nothing may
    # error (reset, truncated) or time out, and nothing may be a 5xx.
    m = re.search(r"(\d+) failed, (\d+) errored, (\d+) timeout\s+status codes: (\d+) 2xx, "
                  r"\d+ 3xx, (\d+) 4xx, (\d+) 5xx", out)
    failed, errored, timeouts, ok, client_errors, server_errors = map(int, m.groups())
    assert (errored, timeouts, server_errors) == (0, 0, 0), out
    assert failed == client_errors and ok > client_errors, out
    assert fds_after <= fds_at_start, (fds_at_start, fds_after)
    assert growth < RSS_GROWTH_BOUND_KIB, samples
    assert server.stop() == 0, server.stderr()  # under ASan, LeakSanitizer checks at this exit
