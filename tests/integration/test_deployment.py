"""The deployment kit, exercised with the real programs: systemd's tools, nginx, h2load."""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import BINARY, Server, curl
from nginx import Nginx

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNITS = os.path.join(ROOT, "deploy", "systemd")


def units_pointing_at_the_build(workdir):
    """The shipped units, copied with ExecStart aimed at the binary under test (verify checks
    that the executable exists)."""
    out = os.path.join(workdir, "units")
    os.mkdir(out)
    for path in glob.glob(os.path.join(UNITS, "*")):
        with open(path) as f:
            text = f.read().replace("/usr/bin/printerfacts", BINARY)
        with open(os.path.join(out, os.path.basename(path)), "w") as f:
            f.write(text)
    # Instantiate the templates once, as systemctl would.
    for suffix in ("socket", "service"):
        shutil.copy(os.path.join(out, f"printerfacts@.{suffix}"), os.path.join(out, f"printerfacts@1.{suffix}"))
    return out


def test_systemd_units_verify_cleanly(workdir):
    units = units_pointing_at_the_build(workdir)
    names = ["printerfacts.socket", "printerfacts-metrics.socket", "printerfacts.service",
             "printerfacts-standalone.service", "printerfacts@1.socket", "printerfacts@1.service"]
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], cwd=units,
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


@pytest.mark.parametrize("unit", ["printerfacts.service", "printerfacts-standalone.service", "printerfacts@1.service"])
def test_systemd_units_are_hardened(workdir, unit):
    units = units_pointing_at_the_build(workdir)
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", unit], cwd=units,
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    # systemd rates 0-10; below 2 is its "SAFE" band.
    assert float(m.group(1)) < 2.0, r.stdout


def test_units_keep_sockets_out_of_tmp():
    for path in glob.glob(os.path.join(UNITS, "*")):
        text = "\n".join(l for l in open(path).read().splitlines() if not l.startswith("#"))
        assert "/tmp" not in text and "PrivateTmp=false" not in text and "PrivateTmp=no" not in text, path


def test_sd_notify_ready_stopping_and_watchdog(workdir):
    notify_path = os.path.join(workdir, "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(10)
    server = Server(workdir, ["--listen", "unix:./pf.sock"], wait=False,
                    env={"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "200000"})
    try:
        ready = notify.recv(4096).decode()
        assert "READY=1" in ready
        # READY comes only once the socket is listening with its final permissions.
        assert curl("--unix-socket", os.path.join(workdir, "pf.sock"), "http://x/healthz").stdout == "ok\n"
        pings = 0
        deadline = time.monotonic() + 5
        while pings < 3 and time.monotonic() < deadline:
            if "WATCHDOG=1" in notify.recv(4096).decode():
                pings += 1
        assert pings == 3
        server.signal()
        while True:
            msg = notify.recv(4096).decode()
            if "STOPPING=1" in msg:
                break
        assert server.proc.wait(timeout=10) == 0
    finally:
        server.kill()


def test_nginx_with_the_www_data_group_serves_facts(start, workdir):
    start("--listen", f"unix:{workdir}/http.sock", "--socket-group", "www-data")
    nginx = Nginx(workdir)
    try:
        r = curl("-i", nginx.url("/fact"))
        assert r.stdout.startswith("HTTP/1.1 200 OK")
        assert r.stdout.endswith("\n")
        r = curl("-i", nginx.url("/"))
        assert "<blockquote>" in r.stdout
    finally:
        nginx.stop()


@pytest.fixture
def other_group(system_group):
    return system_group("pfother")


def test_nginx_outside_the_group_gets_502_permission_denied(start, workdir, other_group):
    # The failure this project exists to prevent, asserted on purpose: nginx's workers (www-data)
    # are not in the socket's group.
    start("--listen", f"unix:{workdir}/http.sock", "--socket-group", other_group)
    nginx = Nginx(workdir)
    try:
        r = curl("-o", "/dev/null", "-w", "%{http_code}", nginx.url("/fact"), check=False)
        assert r.stdout == "502"
        deadline = time.monotonic() + 5
        while "Permission denied" not in nginx.errors() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert re.search(r"connect\(\) to unix:\S+http.sock failed \(13: Permission denied\)", nginx.errors())
    finally:
        nginx.stop()


def test_nginx_upstream_keepalive_reuses_connections(start, workdir):
    server = start("--listen", f"unix:{workdir}/http.sock", "--socket-group", "www-data")
    nginx = Nginx(workdir)
    try:
        for _ in range(20):
            curl(nginx.url("/fact"))
    finally:
        nginx.stop()
    server.stop()
    peers = {line.split(" ")[1] for line in server.stdout().splitlines() if "/fact" in line}
    # nginx's single worker kept one connection open and sent all 20 requests over it.
    assert len(peers) == 1, peers


def test_healthcheck_command(start, workdir):
    path = os.path.join(workdir, "pf.sock")
    r = subprocess.run([BINARY, "healthcheck", "--listen", f"unix:{path}"], capture_output=True, text=True)
    assert r.returncode == 1 and path in r.stderr
    start("--listen", f"unix:{path}")
    r = subprocess.run([BINARY, "healthcheck", "--listen", f"unix:{path}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "200 ok" in r.stdout
    r = subprocess.run([BINARY, "--healthcheck"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "SOCKPATH": path})
    assert r.returncode == 0


def test_zero_downtime_restarts_with_the_socket_held_as_systemd_does(workdir):
    """A harness keeps the listening socket open, like systemd's .socket unit, and restarts the
    service 10 times (SIGTERM, wait for exit, start again) while h2load sends requests over the
    socket. Connections that arrive between two instances wait in the backlog."""
    path = os.path.join(workdir, "held.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4096)
    fd = listener.fileno()
    # Like systemd with Type=notify, the harness waits for READY=1 before it goes on (a SIGTERM
    # before the process has even reached main() would kill it, under systemd as here).
    notify_path = os.path.join(workdir, "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(30)

    def launch():
        def child_setup():
            os.dup2(fd, 3)
            os.set_inheritable(3, True)
        # LISTEN_PID must be the pid of the process that serves; sh sets it and execs in place.
        proc = subprocess.Popen(
            ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"', BINARY, "--access-log", "off",
             "--threads", "1"],
            cwd=workdir, preexec_fn=child_setup, close_fds=False,
            env={"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": notify_path}, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(workdir, "restarts.log"), "ab"))
        notify.settimeout(30)
        while b"READY=1" not in notify.recv(4096):
            pass
        return proc

    current = launch()
    time.sleep(0.5)
    load = subprocess.Popen(["h2load", "--h1", "-B", f"unix:{path}", "-c", "8", "-D", "8", "-T", "5",
                             "http://localhost/fact"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    exits = []
    try:
        time.sleep(0.5)
        for _ in range(10):
            current.send_signal(signal.SIGTERM)
            notify.settimeout(0.1)
            stop_by = time.monotonic() + 15
            # STOPPING=1 and the rest, read so sd_notify never waits.
            while current.poll() is None and time.monotonic() < stop_by:
                try:
                    notify.recv(4096)
                except socket.timeout:
                    pass
            exits.append(current.wait(timeout=15))
            current = launch()
            time.sleep(0.5)
        out, _ = load.communicate(timeout=60)
    finally:
        current.send_signal(signal.SIGTERM)
        current.wait(timeout=15)
        listener.close()
        notify.close()
    assert exits == [0] * 10
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
    assert m, out
    total, started, done, succeeded, failed, errored = map(int, m.groups())
    print(out)
    assert succeeded > 200, out
    assert failed == 0 and errored == 0, out
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    assert int(codes.group(1)) == succeeded, out
