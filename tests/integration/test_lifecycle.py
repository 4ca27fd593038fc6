"""Shutdown: requests in flight finish, idle connections close, the deadline holds."""

import os
import signal
import socket
import time

from conftest import exchange, recv_until_closed, unix_connect


def test_sigterm_lets_a_request_in_flight_finish(start, workdir):
    server = start("--listen", "unix:./pf.sock")
    path = os.path.join(workdir, "pf.sock")
    s = unix_connect(path)
    s.sendall(b"GET /fact HTTP/1.1\r\nHost: x\r\n")  # half a request: in flight
    time.sleep(0.2)
    server.signal()
    time.sleep(0.3)
    assert server.proc.poll() is None, "the server must wait for the request in flight"
    assert not os.path.exists(path), "new connections are no longer accepted"
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
    time.sleep(0.3)
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
    assert server.proc.wait(timeout=5) == 0
    assert time.monotonic() - started < 2


def test_shutdown_deadline_cuts_off_a_stuck_request(start, workdir):
    server = start("--listen", "unix:./pf.sock", "--shutdown-timeout", "1s", "--header-timeout", "60s")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    s.sendall(b"GET /fact HTTP/1.1\r\n")  # and never finishes it
    time.sleep(0.2)
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
    assert time.monotonic() - started < 3


def test_header_timeout_closes_a_slow_request(start, workdir):
    start("--listen", "unix:./pf.sock", "--header-timeout", "500ms")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    started = time.monotonic()
    s.sendall(b"GET /fact HTTP/1.1\r\n")
    for _ in range(10):
        time.sleep(0.1)
        try:
            s.sendall(b"X-Slow: 1\r\n")  # slowloris: a byte now and then never extends the deadline
        except OSError:
            break
    assert recv_until_closed(s) == b""
    assert time.monotonic() - started < 3
