"""The environment failing as an operator's does: a log reader that stops reading, a full disk,
a burst of connections up to the limit, descriptors running out, standard streams closed at
start. Serving and shutdown must go on; what is lost must be counted and said."""

import fcntl
import os
import re
import subprocess
import threading
import time

import pytest

from conftest import (Server, curl, exchange, metrics, raise_fd_limit, unix_connect,
                      wait_until)

DROPPED = 'printerfacts_log_lines_dropped_total{{stream="{}",reason="{}"}}'


def stalled_pipe():
    """A pipe already full (its buffer shrunk to one page and filled): the next write to it
    blocks until the test reads. Returns (read end, write end)."""
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
    os.write(w, b"x" * fcntl.fcntl(w, fcntl.F_GETPIPE_SZ))
    return r, w


def get(sock, target=b"/fact"):
    return exchange(sock, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")[0]


# A request whose access log line is over 4 KB: 700 of them are more than the hand-over to the
# log's writer holds (2 MiB), so lines must be dropped once stdout stops being read.
LONG_TARGET = b"/" + b"a" * 4000


def stop_within(server, seconds):
    """Sends SIGTERM and returns (exit status, how long the exit took)."""
    started = time.monotonic()
    server.signal()
    try:
        code = server.proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {seconds}s after SIGTERM")
    return code, time.monotonic() - started


def test_a_stalled_stdout_stops_neither_serving_nor_shutdown(start, workdir):
    r, w = stalled_pipe()
    server = start("--listen", "unix:./pf.sock", "--metrics-listen", "unix:./m.sock",
                   "--threads", "2", "--shutdown-timeout", "2s", stdout=w)
    os.close(w)
    try:
        with unix_connect(os.path.join(workdir, "pf.sock")) as s:
            for _ in range(700):
                assert get(s, LONG_TARGET) == 404
            # Another connection, and the other worker, are served too.
            for _ in range(20):
                with unix_connect(os.path.join(workdir, "pf.sock")) as t:
                    assert get(t) == 200
        samples = metrics(os.path.join(workdir, "m.sock"))
        assert samples[DROPPED.format("access", "queue_full")] > 0, samples
        assert samples[DROPPED.format("diagnostics", "queue_full")] == 0
        wait_until(lambda: "not read fast enough" in server.stderr(), "the loss is said")
        assert server.stderr().count("not read fast enough") == 1, server.stderr()

        # Nobody reads; SIGTERM must still end the process, within --shutdown-timeout (and the
        # 0.2 s the logs get after it), saying what could not be written.
        code, took = stop_within(server, 30)
        assert code == 0, server.stderr()
        assert took < 2.2 + 3, took  # a loaded machine may take a few seconds more to exit
        assert re.search(r"error \d+ access log line\(s\) not written at exit", server.stderr())
    finally:
        os.close(r)


def test_logging_says_when_a_stalled_reader_comes_back(start, workdir):
    r, w = stalled_pipe()
    server = start("--listen", "unix:./pf.sock", "--metrics-listen", "unix:./m.sock",
                   "--threads", "1", stdout=w)
    os.close(w)
    read = bytearray()
    reader = threading.Thread(target=lambda: [read.extend(b) for b in iter(lambda: os.read(r, 65536), b"")])
    try:
        with unix_connect(os.path.join(workdir, "pf.sock")) as s:
            for _ in range(700):
                assert get(s, LONG_TARGET) == 404
            dropped = metrics(os.path.join(workdir, "m.sock"))[DROPPED.format("access", "queue_full")]
            assert dropped > 0
            reader.start()  # the reader is back
            wait_until(lambda: "works again" in server.stderr(), "the end of the loss is said")
            said = re.search(r"logging to stdout \(access\) works again; (\d+) line\(s\) were dropped",
                             server.stderr())
            assert said and int(said.group(1)) == dropped, server.stderr()
            assert get(s) == 200
        server.stop()
        reader.join(timeout=30)
        # Every line that was not counted as dropped arrived (the test's own page of x aside):
        # 700 404s, the scrape of /metrics and one /fact.
        lines = bytes(read).lstrip(b"x").count(b"\n")
        assert lines == 700 + 1 + 1 - dropped, (lines, dropped)
    finally:
        os.close(r)


def test_a_stalled_stderr_stops_neither_start_nor_serving_nor_shutdown(start, workdir):
    r, w = stalled_pipe()
    # Every diagnostic line from the first one on meets a full pipe.
    server = start("--listen", "unix:./pf.sock", "--shutdown-timeout", "2s", "--access-log", "off",
                   stderr=w)
    os.close(w)
    try:
        for _ in range(5):
            server.signal(1)  # SIGHUP: a reload, and its diagnostics
            time.sleep(0.2)
            server.notifications()
        with unix_connect(os.path.join(workdir, "pf.sock")) as s:
            for _ in range(50):
                assert get(s) == 200
        code, took = stop_within(server, 30)
        assert code == 0
        assert took < 2.2 + 3, took
    finally:
        os.close(r)


def test_a_full_disk_is_counted_and_said_once(start, workdir):
    with open("/dev/full", "wb") as full:
        server = start("--listen", "unix:./pf.sock", "--metrics-listen", "unix:./m.sock",
                       stdout=full)
    path = os.path.join(workdir, "pf.sock")
    for _ in range(20):
        assert curl("--unix-socket", path, "http://x/fact").returncode == 0
    m = os.path.join(workdir, "m.sock")
    wait_until(lambda: metrics(m)[DROPPED.format("access", "no_space")] >= 20, "20 lines counted")
    assert server.stderr().count("write failed (No space left on device)") == 1, server.stderr()


def test_diagnostics_on_a_full_disk_are_counted(start, workdir):
    with open("/dev/full", "wb") as full:
        server = start("--listen", "unix:./pf.sock", "--metrics-listen", "unix:./m.sock",
                       "--access-log", "off", stderr=full)
    assert curl("--unix-socket", os.path.join(workdir, "pf.sock"), "http://x/fact").returncode == 0
    # At least the start-up lines ("listening on", "ready") were lost.
    samples = metrics(os.path.join(workdir, "m.sock"))
    assert samples[DROPPED.format("diagnostics", "no_space")] >= 2, samples
    assert server.stop() == 0


def refused(sock):
    """Whether the server closed `sock` without answering the request sent on it."""
    sock.settimeout(10)
    try:
        sock.sendall(b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n")
        return sock.recv(100) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True  # closed before or with our request unread


@pytest.mark.parametrize("threads", [2, 4])
def test_the_connection_limit_is_the_whole_process(start, workdir, threads):
    raise_fd_limit(4096)
    server = start("--listen", "unix:./pf.sock", "--metrics-listen", "unix:./m.sock",
                   "--max-connections", "100", "--threads", str(threads), "--access-log", "off")
    path = os.path.join(workdir, "pf.sock")
    held = []
    for i in range(100):  # each worker took however many the kernel gave it: all are served
        s = unix_connect(path)
        assert get(s) == 200, f"connection {i + 1} of 100"
        held.append(s)
    for _ in range(20):
        with unix_connect(path) as s:
            assert refused(s)
    samples = metrics(os.path.join(workdir, "m.sock"))
    assert samples['printerfacts_connections_refused_total{listener="unix:./pf.sock",reason="limit"}'] == 20
    held.pop().close()
    wait_until(lambda: get_or_none(path) == 200, "a freed place is used again")
    for s in held:
        s.close()


def get_or_none(path):
    try:
        with unix_connect(path) as s:
            return get(s)
    except (AssertionError, ConnectionResetError, BrokenPipeError):
        return None


def test_monitoring_gets_through_at_the_connection_limit(start, workdir):
    raise_fd_limit(4096)
    server = start("--listen", "unix:./pf.sock", "--metrics-listen", "unix:./m.sock",
                   "--max-connections", "10", "--threads", "2", "--access-log", "off")
    path, m = os.path.join(workdir, "pf.sock"), os.path.join(workdir, "m.sock")
    held = [unix_connect(path) for _ in range(10)]
    for s in held:
        assert get(s) == 200
    with unix_connect(path) as s:
        assert refused(s), "the service is full"
    for _ in range(20):
        assert curl("--unix-socket", m, "http://x/healthz").stdout == "ok\n"
        with unix_connect(m) as s:
            assert get(s, b"/metrics") == 200
    assert "printerfacts_connections_open" in curl("--unix-socket", m, "http://x/metrics").stdout
    for s in held:
        s.close()
    server.stop()


def test_open_fds_is_right_when_descriptors_run_out(workdir):
    raise_fd_limit(4096)
    server = Server(workdir, ["--listen", "unix:./pf.sock", "--metrics-listen", "unix:./m.sock",
                              "--threads", "1", "--access-log", "off"],
                    wrapper=["prlimit", "--nofile=64"])
    try:
        scraper = unix_connect(os.path.join(workdir, "m.sock"))  # before descriptors run out
        assert metrics(scraper)["process_max_fds"] == 64
        held = [unix_connect(os.path.join(workdir, "pf.sock")) for _ in range(80)]
        wait_until(lambda: "accept failed" in server.stderr(), "the server ran out of descriptors")
        samples = metrics(scraper)
        listed = len(os.listdir(f"/proc/{server.proc.pid}/fd"))
        assert listed == 64
        assert samples["process_open_fds"] == listed, samples.get("process_open_fds")
        assert samples["process_resident_memory_bytes"] > 0
        for s in held:
            s.close()
        scraper.close()
    finally:
        server.kill()


def test_started_with_standard_streams_closed(start, workdir):
    # The shell closes 0, 1 and 2, then becomes printerfacts ("$0" is the binary).
    server = start("--listen", "unix:./pf.sock", "--metrics-listen", "unix:./m.sock",
                   wrapper=["sh", "-c", 'exec "$0" "$@" <&- >&- 2>&-'])
    for fd in (0, 1, 2):
        assert os.readlink(f"/proc/{server.proc.pid}/fd/{fd}") == "/dev/null", fd
    path = os.path.join(workdir, "pf.sock")
    for _ in range(20):  # each logged to "stdout": none of it may land in a connection
        with unix_connect(path) as s:
            status, headers, body, rest = exchange(s, b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status == 200 and body.endswith(b"\n") and rest == b""
    assert curl("--unix-socket", os.path.join(workdir, "m.sock"), "http://x/healthz").stdout == "ok\n"
    assert server.stop() == 0


def test_what_already_held_keeps_holding(start, workdir):
    """30 SIGHUPs and a SIGSTOP/SIGCONT under load lose nothing; SIGKILL, then a restart on the
    same path, serves again (the stale socket is replaced)."""
    path = os.path.join(workdir, "pf.sock")
    server = start("--listen", "unix:./pf.sock", "--threads", "2", "--metrics-on-main")
    stop = threading.Event()
    answered, failures = [0], []

    def client():
        while not stop.is_set():
            try:
                with unix_connect(path) as s:
                    for _ in range(50):
                        status = get(s)
                        if status != 200:
                            failures.append(status)
                        answered[0] += 1
            except OSError as e:  # pragma: no cover - the assertion below reports it
                failures.append(repr(e))

    load = [threading.Thread(target=client) for _ in range(2)]
    for t in load:
        t.start()
    try:
        for i in range(30):
            before = server.stderr().count("reloaded:")
            server.signal(1)  # SIGHUP
            wait_until(lambda: server.stderr().count("reloaded:") > before, f"reload {i + 1}")
            server.notifications()  # read, as systemd would: an unread socket blocks sd_notify
        server.signal(19)  # SIGSTOP
        time.sleep(0.5)
        server.signal(18)  # SIGCONT
        at_cont = answered[0]
        wait_until(lambda: answered[0] > at_cont + 100, "serving again after SIGCONT")
    finally:
        stop.set()
        for t in load:
            t.join(timeout=60)
    assert failures == [], failures[:5]
    assert metrics(path)['printerfacts_reloads_total{result="applied"}'] == 30
    server.proc.kill()  # SIGKILL: no cleanup, the socket file stays
    server.proc.wait()
    again = start("--listen", "unix:./pf.sock")
    wait_until(lambda: "stale socket" in again.stderr(), "the stale socket said")
    assert get_or_none(path) == 200
