"""Shutdown: requests in flight finish, idle connections close, the deadline holds."""

import os
import re
import signal
import socket
import subprocess
import threading
import time

from conftest import exchange, read_until_closed, recv_until_closed, unix_connect, wait_read, wait_until


def test_sigterm_lets_a_request_in_flight_finish(start, workdir):
    server = start("--listen", "unix:./pf.sock")
    path = os.path.join(workdir, "pf.sock")
    s = unix_connect(path)
    s.sendall(b"GET /fact HTTP/1.1\r\nHost: x\r\n")  # half a request: in flight
    wait_read(s)
    server.signal()
    wait_until(lambda: "draining 1 connection(s)" in server.stderr(), "the drain to begin")
    assert not os.path.exists(path), "the listener's file is removed before the drain"
    assert server.proc.poll() is None, "the server must wait for the request in flight"
    s.sendall(b"\r\n")
    data = recv_until_closed(s)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close\r\n" in data
    assert data.endswith(b"\n")
    assert server.proc.wait(timeout=10) == 0


def test_sigterm_finishes_a_large_response_to_a_slow_reader(start, workdir):
    root = os.path.join(workdir, "static")
    os.mkdir(root)
    payload = os.urandom(8 * 1024 * 1024)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(payload)
    server = start("--listen", "unix:./pf.sock", "--static-dir", root)
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    first = s.recv(1000)
    server.signal()
    wait_until(lambda: not os.path.exists(os.path.join(workdir, "pf.sock")), "shutdown has begun")
    data = first + recv_until_closed(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body == payload
    assert server.proc.wait(timeout=10) == 0


def test_sigterm_closes_idle_keep_alive_connections_at_once(start, workdir):
    server = start("--listen", "unix:./pf.sock")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    status, _, _, _ = exchange(s, b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200
    started = time.monotonic()
    server.signal()
    assert s.recv(100) == b"", "the idle connection is closed"
    s.close()  # as a client does on end of stream: the server's lingering close ends at once
    assert server.proc.wait(timeout=5) == 0
    assert time.monotonic() - started < 1.5


def test_sigterm_waits_a_bounded_time_for_an_idle_client_to_close(start, workdir):
    """The server half-closes an idle connection and lingers, so a request crossing its FIN
    meets an orderly end of stream rather than a reset; a client that never closes holds the
    exit back by the lingering time at most (2 s), not up to the shutdown deadline."""
    server = start("--listen", "unix:./pf.sock", "--shutdown-timeout", "30s")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    status, _, _, _ = exchange(s, b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200
    started = time.monotonic()
    server.signal()
    assert s.recv(100) == b""
    s.sendall(b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n")  # too late: read and dropped, no reset
    assert server.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 4.5
    assert s.recv(100) == b""


def test_shutdown_deadline_cuts_off_a_stuck_request(start, workdir):
    server = start("--listen", "unix:./pf.sock", "--shutdown-timeout", "1s", "--header-timeout", "60s")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    s.sendall(b"GET /fact HTTP/1.1\r\n")  # and never finishes it
    wait_read(s)
    started = time.monotonic()
    server.signal()
    assert server.proc.wait(timeout=10) == 0
    elapsed = time.monotonic() - started
    assert 0.8 < elapsed < 5, elapsed
    assert "shutdown deadline passed" in server.stderr()


def test_sigint_also_shuts_down_cleanly(start, workdir):
    server = start("--listen", "unix:./pf.sock")
    assert server.stop(signal.SIGINT) == 0
    assert "received SIGINT" in server.stderr()


def test_idle_timeout_closes_a_quiet_connection(start, workdir):
    start("--listen", "unix:./pf.sock", "--idle-timeout", "300ms")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    exchange(s, b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n")
    started = time.monotonic()
    assert s.recv(100) == b""
    assert time.monotonic() - started < 5


def test_header_timeout_closes_a_slow_request(start, workdir):
    """A slowloris client sends a header line every 100 ms for up to 20 s: the 500 ms header
    deadline is never extended by it, so the connection closes long before the client stops.
    The server closes with the client's last line possibly unread, which the kernel turns into
    a reset: EOF and ECONNRESET both count as closed (and the client's write may fail first)."""
    start("--listen", "unix:./pf.sock", "--header-timeout", "500ms")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    started = time.monotonic()
    s.sendall(b"GET /fact HTTP/1.1\r\n")
    closed_while_sending = False
    for _ in range(200):
        time.sleep(0.1)  # the client's pace, not synchronisation
        try:
            s.sendall(b"X-Slow: 1\r\n")
        except OSError:  # EPIPE or ECONNRESET: the server has closed
            closed_while_sending = True
            break
    took = time.monotonic() - started
    assert read_until_closed(s) == b"", "no answer is owed to a request that never finished"
    assert closed_while_sending, "the connection stayed open while the client trickled"
    assert took < 10, f"closed after {took:.1f}s; the deadline is 0.5s"


class _Client(threading.Thread):
    """Sends GET /fact in a loop until the server goes away, over one keep-alive connection or a
    new connection per request, and records how every exchange ended."""

    def __init__(self, path, keep_alive):
        super().__init__(daemon=True)
        self.path = path
        self.keep_alive = keep_alive
        self.complete = 0   # responses received in full
        self.unsent = 0     # requests the server closed before reading (EOF, no byte of answer)
        self.errors = []    # anything else: resets, broken pipes, truncated responses

    def run(self):
        sock = None
        while True:
            try:
                if sock is None:
                    sock = unix_connect(self.path, timeout=10)
            except (FileNotFoundError, ConnectionRefusedError):
                return  # the listener is gone: nothing more was accepted
            request = b"GET /fact HTTP/1.1\r\nHost: x\r\n" + (b"" if self.keep_alive else b"Connection: close\r\n") + b"\r\n"
            try:
                sock.sendall(request)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                if not data:
                    # Closed while the request was on its way: allowed only as an idle connection
                    # closed at shutdown, and then cleanly (EOF, not a reset).
                    self.unsent += 1
                    sock.close()
                    sock = None
                    continue
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"\r\nContent-Length: (\d+)", head).group(1))
                while len(body) < length:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    body += chunk
                if not head.startswith(b"HTTP/1.1 200 OK") or len(body) != length:
                    self.errors.append(f"incomplete response: {data[:80]!r} body {len(body)}/{length}")
                    return
                self.complete += 1
                if b"\r\nConnection: close" in head:
                    if sock.recv(100) != b"":  # the server must close cleanly, not reset
                        self.errors.append("data after Connection: close")
                    sock.close()
                    sock = None
            except OSError as e:  # ECONNRESET, EPIPE, timeouts
                kind = "keep-alive" if self.keep_alive else "one request per connection"
                self.errors.append(f"{kind}, after {self.complete} responses: {type(e).__name__}: {e}")
                return


def _access_log_statuses(server):
    return [line.split('"')[2].split()[0] for line in server.stdout().splitlines() if '"' in line]


def test_sigterm_under_load_answers_every_accepted_request(start, workdir):
    """h2load and keep-alive and connection-per-request clients at full speed; SIGTERM in the
    middle. Every request the server logged as answered reached a client whole; no client sees a
    reset; the server exits 0 well within its deadline."""
    server = start("--listen", "unix:./pf.sock", "--threads", "2", "--shutdown-timeout", "5s")
    path = os.path.join(workdir, "pf.sock")
    load = subprocess.Popen(["h2load", "--h1", "-B", f"unix:{path}", "-c", "32", "-D", "4",
                             "http://localhost/fact"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    clients = [_Client(path, keep_alive=i % 2 == 0) for i in range(8)]
    for c in clients:
        c.start()
    # Under full load before the signal: each kind of client has been answered many times.
    wait_until(lambda: sum(c.complete for c in clients) > 200 and server.stdout().count("\n") > 1000,
               "the clients and h2load have been answered", timeout=60)
    signalled = time.monotonic()
    server.signal()
    assert server.proc.wait(timeout=10) == 0
    took = time.monotonic() - signalled
    out = load.communicate(timeout=30)[0].decode()
    for c in clients:
        c.join(timeout=10)

    print(out)
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored", out)
    done, succeeded, failed, errored = map(int, m.groups())
    assert (failed, errored) == (0, 0), out
    assert re.search(r"status codes: \d+ 2xx, 0 3xx, 0 4xx, 0 5xx", out), out
    errors = [e for c in clients for e in c.errors]
    assert errors == [], errors
    complete = sum(c.complete for c in clients)
    assert complete > 200 and succeeded > 0, (complete, succeeded)
    # The access log holds one line per request the server answered: each of them arrived whole.
    statuses = _access_log_statuses(server)
    assert set(statuses) == {"200"}, set(statuses)
    assert len(statuses) == succeeded + complete, (len(statuses), succeeded, complete)
    # Nothing was stuck until the 5 s deadline (a loaded machine may take a while to drain).
    assert took < 4.5 and "shutdown deadline passed" not in server.stderr(), f"exit took {took:.2f}s"
    print(f"h2load {succeeded} and clients {complete} complete responses, "
          f"{sum(c.unsent for c in clients)} requests closed unread, exit after {took:.2f}s")
