"""Overload and slow clients: slowloris, slow readers, descriptor exhaustion, connect bursts."""

import os
import socket
import time

import pytest

from conftest import (Server, curl, exchange, raise_fd_limit, rss_kib, unix_connect, wait_read,
                      wait_until)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_slowloris_does_not_starve_a_normal_client(start, workdir):
    raise_fd_limit(4096)
    server = start("--listen", "unix:./pf.sock", "--header-timeout", "2s", "--access-log", "off")
    path = os.path.join(workdir, "pf.sock")
    slow = []
    for _ in range(1000):
        s = unix_connect(path)
        s.sendall(b"GET /fact HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        slow.append(s)
    client = unix_connect(path)
    worst = 0.0
    for _ in range(50):
        t = time.monotonic()
        status, _, body, _ = exchange(client, b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n")
        worst = max(worst, time.monotonic() - t)
        assert status == 200
    # Starved, it would wait for the slow connections' 2 s deadline; served, it takes milliseconds
    # (the margin is for a loaded machine).
    assert worst < 1.5, f"a normal request took {worst:.3f}s among 1000 slow connections"
    # Trickling more bytes does not extend the deadline, which counts from the first byte.
    trickled = time.monotonic()
    for s in slow[:100]:
        s.sendall(b"X-Slow: 1\r\n")
    # Each must be closed by its 2 s deadline; the wait for it is generous (a loaded machine),
    # and bounded by 12 s from the trickle, far less than a deadline extended by every byte
    # would keep them (the test would then see them open).
    closed = 0
    for s in slow:
        s.settimeout(max(0.05, trickled + 12 - time.monotonic()))
        try:
            if s.recv(100) == b"":
                closed += 1
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
    assert closed == 1000, f"only {closed} of 1000 slow connections were cut off"


def test_a_slow_reader_is_cut_off_and_memory_stays_bounded(start, workdir):
    root = os.path.join(workdir, "static")
    os.mkdir(root)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(os.urandom(1024 * 1024) * 64)  # 64 MiB
    server = start("--listen", "unix:./pf.sock", "--static-dir", root, "--send-timeout", "1s")
    before = rss_kib(server.proc.pid)
    readers = []
    for _ in range(20):
        s = unix_connect(os.path.join(workdir, "pf.sock"))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        readers.append(s)  # and read (almost) nothing
    # Every reader's response has started (its head is logged only when it ends, so the server's
    # memory is sampled while the files are being sent: once the 20 requests are read).
    for s in readers:
        wait_read(s)
    during = rss_kib(server.proc.pid)
    # Cut off by the 1 s send timeout: each request is logged when its connection gives up.
    wait_until(lambda: server.stdout().count("GET /static/big.bin") == 20, "all 20 readers were cut off", 60)
    for s in readers:
        s.settimeout(5)
        data = b""
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert len(data) < 64 * 1024 * 1024, "the slow reader got the whole file: not cut off"
        s.close()
    # 20 slow readers of a 64 MiB file cost the server far less than one copy of the file.
    assert during - before < 16 * 1024, (before, during)
    assert curl("--unix-socket", os.path.join(workdir, "pf.sock"), "http://x/healthz").stdout == "ok\n"


@pytest.mark.parametrize("limit", [64, 256])
def test_descriptor_exhaustion_without_a_busy_loop(workdir, limit):
    raise_fd_limit(4096)
    server = Server(workdir, ["--listen", "unix:./pf.sock", "--threads", "1", "--access-log", "off"],
                    wrapper=["prlimit", f"--nofile={limit}"])
    try:
        path = os.path.join(workdir, "pf.sock")
        held = [unix_connect(path) for _ in range(limit + 60)]  # more than the server can accept
        wait_until(lambda: "accept failed" in server.stderr(), "the server ran out of descriptors")
        used_before = cpu_seconds(server.proc.pid)
        time.sleep(2)
        used = cpu_seconds(server.proc.pid) - used_before
        assert used < 0.5, f"server burned {used:.2f}s CPU in 2s while out of descriptors"
        assert "accept failed" in server.stderr()
        for s in held:
            s.close()
        # Descriptors are free again: the server serves again.
        deadline = time.monotonic() + 30
        while True:
            r = curl("--unix-socket", path, "http://x/healthz", check=False)
            if r.stdout == "ok\n" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.stdout == "ok\n"
    finally:
        server.kill()


def all_threads_stopped(pid):
    """Whether every thread of process `pid` is in the stopped state (T)."""
    tasks = os.listdir(f"/proc/{pid}/task")
    for tid in tasks:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            # The state follows the command name, which is in parentheses and may hold spaces.
            if f.read().rsplit(")", 1)[1].split()[0] != "T":
                return False
    return True


def burst(path, n):
    """Opens n connections at once without the server getting a chance to accept: how many
    does the kernel queue before connect() fails?"""
    socks, refused = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX)
        s.setblocking(False)
        try:
            s.connect(path)
            socks.append(s)
        except (BlockingIOError, ConnectionRefusedError, OSError):
            refused += 1
            s.close()
    for s in socks:
        s.close()
    return refused


def test_listen_backlog_absorbs_a_burst_and_is_configurable(workdir):
    raise_fd_limit(8192)
    results = {}
    for backlog in (4096, 16):
        path = os.path.join(workdir, f"b{backlog}.sock")
        server = Server(workdir, ["--listen", f"unix:{path}", "--backlog", str(backlog), "--threads", "1"])
        try:
            server.proc.send_signal(19)  # SIGSTOP: nobody accepts, so only the backlog holds them
            # The signal is delivered asynchronously: until every thread has stopped, a worker
            # may still accept (a loaded machine showed 107 accepted).
            wait_until(lambda: all_threads_stopped(server.proc.pid), "the server is stopped")
            results[backlog] = burst(path, 2000)
        finally:
            server.proc.send_signal(18)  # SIGCONT
            server.stop()
    assert results[4096] == 0, results  # a burst of 2000 fits: nginx would see no 502
    assert results[16] > 1900, results  # a tiny backlog fails at once, as nginx's 502 would show


def test_max_connections_turns_extra_connections_away(start, workdir):
    raise_fd_limit(4096)
    server = start("--listen", "unix:./pf.sock", "--max-connections", "50", "--threads", "1")
    path = os.path.join(workdir, "pf.sock")
    held = []
    for _ in range(50):
        s = unix_connect(path)
        exchange(s, b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n")
        held.append(s)
    extra = unix_connect(path)
    extra.settimeout(5)
    try:
        # The server may close it before the request is even written (io_uring refuses it in
        # the same turn as it accepts it): a broken pipe then says "closed at once" too.
        extra.sendall(b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n")
        assert extra.recv(100) == b"", "connection 51 is closed at once"
    except (ConnectionResetError, BrokenPipeError):
        pass  # closed with our request unread: the kernel resets, which is just as closed
    held.pop().close()

    def served_again():
        # Until the server has seen the close, a new connection is still over the limit and is
        # closed (EOF or reset); after it, the new one is served.
        try:
            again = unix_connect(path)
            status, _, _, _ = exchange(again, b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n")
            again.close()
            return status == 200
        except (AssertionError, ConnectionResetError, BrokenPipeError):
            return False
    wait_until(served_again, "a freed slot is used again")
    wait_until(lambda: "connection limit" in server.stderr(), "the limit said")
