"""The Debian package's systemd units under a real systemd as PID 1: a Debian 12 machine booted
with systemd-nspawn, the project's .deb installed with dpkg, driven with the real systemctl.

What only the real engine shows: that a restart of the service leaves its socket alone (no
PartOf=), that stopping the service leaves the socket to activate it again, that reload works,
that the hardening lets the standalone unit run, and what the watchdog does."""

import os
import re
import shutil
import stat
import subprocess
import time

import pytest

from conftest import wait_until
from machine import HTTP, METRICS, Load, Machine, request, root_tree
from package import build_deb

SOCKETS = ["printerfacts.socket", "printerfacts-metrics.socket"]


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    work = tmp_path_factory.mktemp("machine")
    deb = build_deb()
    depends = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True, text=True,
                             check=True).stdout.strip()
    m = Machine(root_tree(depends), f"pftest{os.getpid()}", str(work / "console.log"))
    try:
        shutil.copy(deb, m.path("/root/printerfacts.deb"))
        # The tests read what the service said in the journal, under load: journald's rate limit
        # (10,000 lines in 30s per unit) would drop it along with the access log.
        os.makedirs(m.path("/etc/systemd/journald.conf.d"), exist_ok=True)
        with open(m.path("/etc/systemd/journald.conf.d/test.conf"), "w") as f:
            f.write("[Journal]\nRateLimitIntervalSec=0\n")
        m.sd("systemctl", "restart", "systemd-journald.service")
        m.sd("dpkg", "-i", "/root/printerfacts.deb")
        m.sd("systemctl", "start", *SOCKETS)
        yield m
    finally:
        m.poweroff()


def main_pid(m, unit="printerfacts.service"):
    return int(m.show(unit, "MainPID"))


def test_the_first_request_activates_the_service_through_its_socket(machine):
    m = machine
    assert m.show("printerfacts.service", "ActiveState") == "inactive", "nothing runs before a request"
    st = os.stat(m.path(HTTP))
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
    assert m.sd("stat", "-c", "%U:%G", HTTP).stdout.strip() == "root:www-data"
    status, body = request(m)
    assert status == 200 and body.endswith(b"\n")
    assert m.show("printerfacts.service", "ActiveState") == "active"
    # Readiness: Type=notify, so "active" means the process said READY=1.
    assert m.show("printerfacts.service", "Type") == "notify"
    assert m.show("printerfacts.service", "StatusErrno") == "0"
    # What `systemctl status` shows on its Status: line (STATUS=).
    assert re.fullmatch(r"serving on (io_uring|epoll): \d+ connection\(s\) open(, \d+ request\(s\) served)?",
                        m.show("printerfacts.service", "StatusText")), m.show("printerfacts.service", "StatusText")
    journal = m.sd("journalctl", "-u", "printerfacts.service", "-o", "cat").stdout
    assert "(from systemd)" in journal and "ready with" in journal, journal
    # The group decides who may connect: a www-data process may, nobody else (but root).
    allowed = m.sd("runuser", "-u", "www-data", "--", "curl", "-sS", "--unix-socket", HTTP, "http://x/fact",
                   check=False)
    assert allowed.returncode == 0 and allowed.stdout.endswith("\n"), allowed.stderr
    denied = m.sd("runuser", "-u", "nobody", "--", "curl", "-sS", "--unix-socket", HTTP, "http://x/fact",
                  check=False)
    assert denied.returncode == 7 and "Couldn't connect" in denied.stderr, denied.stderr  # EACCES


def test_five_restarts_under_load_lose_no_request_and_leave_the_socket_alone(machine):
    m = machine
    request(m)  # running
    inode = os.stat(m.path(HTTP)).st_ino
    socket_invocation = m.show("printerfacts.socket", "InvocationID")
    pids = {main_pid(m)}
    load = Load(m)
    try:
        for _ in range(5):
            time.sleep(2.5)  # systemd's start limit: at most 5 starts in 10 s
            m.sd("systemctl", "restart", "printerfacts.service")
            pids.add(main_pid(m))
        time.sleep(1)
    finally:
        ok, failures = load.stop()
    print(f"5 restarts: {ok + len(failures)} requests, {len(failures)} failed")
    assert failures == [], f"{len(failures)} of {ok + len(failures)} requests failed: {failures[:5]}"
    assert ok > 100, ok
    assert len(pids) == 6, "each restart started a new process"
    assert os.stat(m.path(HTTP)).st_ino == inode, "the socket file was never replaced"
    assert m.show("printerfacts.socket", "InvocationID") == socket_invocation, "the socket unit was untouched"
    assert m.show("printerfacts.service", "NRestarts") == "0", "no restart was a failure"


def test_stop_leaves_the_socket_listening_and_the_next_request_starts_the_service(machine):
    m = machine
    request(m)
    m.sd("systemctl", "stop", "printerfacts.service")
    assert m.show("printerfacts.service", "ActiveState") == "inactive"
    assert m.show("printerfacts.service", "Result") == "success", "SIGTERM ends it with exit 0"
    assert m.show("printerfacts.socket", "ActiveState") == "active"
    assert m.show("printerfacts.socket", "SubState") == "listening"
    assert request(m)[0] == 200
    assert m.show("printerfacts.service", "ActiveState") == "active"


def test_reload_rereads_the_config_file_in_place_under_load(machine):
    m = machine
    request(m)
    with open(m.path("/etc/printerfacts/facts.txt"), "w") as f:
        f.write("Reloaded printers print reloaded facts.\n")
    with open(m.path("/etc/printerfacts/printerfacts.toml"), "a") as f:
        f.write('facts-file = "/etc/printerfacts/facts.txt"\n')
    pid = main_pid(m)
    load = Load(m)
    try:
        time.sleep(0.5)
        m.sd("systemctl", "reload", "printerfacts.service")
        wait_until(lambda: request(m)[1] == b"Reloaded printers print reloaded facts.\n", "the new facts", timeout=60, every=0.05)
        # By hand, as an operator might: SIGHUP no longer kills the process.
        m.sd("systemctl", "kill", "--kill-who=main", "-s", "SIGHUP", "printerfacts.service")
        time.sleep(0.5)
    finally:
        ok, failures = load.stop()
    assert failures == [] and ok > 10, failures[:5]
    assert main_pid(m) == pid, "reloaded in place, not restarted"
    assert m.show("printerfacts.service", "ActiveState") == "active"
    # (Not the journal: under this load journald's rate limit drops access-log lines, and with
    # them the reload's own.)
    status, body = request(m, METRICS, "/metrics")
    assert status == 200 and b'printerfacts_reloads_total{result="applied"} 2' in body


def test_an_invalid_reload_fails_systemctl_reload_and_keeps_the_service_running(machine):
    m = machine
    request(m)
    pid = main_pid(m)
    try:
        with open(m.path("/etc/printerfacts/printerfacts.toml"), "a") as f:
            f.write('static-dir = "/nonexistent/static"\n')
        # ExecReload= checks before it signals: systemd 252 has no Type=notify-reload, and without
        # the check `systemctl reload` would succeed whatever the server made of the file.
        r = m.sd("systemctl", "reload", "printerfacts.service", check=False)
        assert r.returncode != 0, r.stdout + r.stderr
        assert m.show("printerfacts.service", "ActiveState") == "active"
        said(m, "cannot open static directory /nonexistent/static")
        assert main_pid(m) == pid and request(m)[0] == 200
        wait_until(lambda: m.show("printerfacts.service", "SubState") == "running", "the reload to end",
                   timeout=60, every=0.05)
        # A SIGHUP by hand skips the check: the server refuses the file itself, and counts it.
        m.sd("systemctl", "kill", "--kill-who=main", "-s", "SIGHUP", "printerfacts.service")
        wait_until(lambda: b'printerfacts_reloads_total{result="failed"} 1' in request(m, METRICS, "/metrics")[1],
                   "the refusal counted", timeout=60, every=0.05)
        assert main_pid(m) == pid and request(m)[0] == 200
        # A misspelt key is refused by the check too, naming the file and line, and the key meant.
        with open(m.path("/etc/printerfacts/printerfacts.toml"), "w") as f:
            f.write('# printerfacts\nfacts-flie = "/etc/printerfacts/facts.txt"\n')
        assert m.sd("systemctl", "reload", "printerfacts.service", check=False).returncode != 0
        said(m, 'printerfacts.toml:2: unknown setting "facts-flie"; did you mean "facts-file"?')
        assert main_pid(m) == pid
    finally:
        with open(m.path("/etc/printerfacts/printerfacts.toml"), "w") as f:
            f.write("")


def said(m, text, unit="printerfacts.service"):
    """Waits until the unit's journal holds `text` (journald takes a stream's lines a moment after
    the process that wrote them has gone)."""
    journal = lambda: m.sd("journalctl", "-u", unit, "-n", "50", "--no-pager").stdout
    wait_until(lambda: text in journal(), f"the journal to say {text!r}", timeout=30, every=0.2)


def test_journalctl_p_err_finds_a_start_up_error(machine):
    m = machine
    r = m.sd("systemd-run", "--unit", "pf-broken", "--wait", "-p", "Type=notify",
             "/usr/bin/printerfacts", "--listen", "unix:/nonexistent/pf.sock", check=False)
    assert r.returncode != 0
    errors = m.sd("journalctl", "-u", "pf-broken", "-p", "err", "-o", "cat").stdout
    assert "cannot create the socket /nonexistent/pf.sock" in errors, errors
    m.sd("systemctl", "reset-failed", "pf-broken", check=False)


def test_a_wrong_configuration_exits_78_and_is_not_restarted(machine):
    m = machine
    m.sd("systemctl", "stop", "printerfacts.service")
    try:
        with open(m.path("/etc/printerfacts/printerfacts.toml"), "w") as f:
            f.write('threads = "many"\n')
        m.sd("systemctl", "reset-failed", "printerfacts.service", check=False)
        assert m.sd("systemctl", "start", "printerfacts.service", check=False).returncode != 0
        time.sleep(3)  # RestartSec=1s: a restart would have happened by now
        assert m.show("printerfacts.service", "ExecMainStatus") == "78"
        assert m.show("printerfacts.service", "NRestarts") == "0", "RestartPreventExitStatus=78"
        assert m.show("printerfacts.service", "ActiveState") == "failed"
        said(m, 'printerfacts.toml:1: threads = "many": expected a whole number such as 4')
    finally:
        with open(m.path("/etc/printerfacts/printerfacts.toml"), "w") as f:
            f.write("")
        m.sd("systemctl", "reset-failed", "printerfacts.service", check=False)
        m.sd("systemctl", "start", "printerfacts.service")
    assert request(m)[0] == 200


def test_the_hardening_is_applied_to_the_running_process(machine):
    m = machine
    request(m)
    pid = main_pid(m)
    assert m.sd("ps", "-o", "user=", "-p", str(pid)).stdout.strip() == "printerfacts"
    status = open(m.path(f"/proc/{pid}/status")).read()
    assert "NoNewPrivs:\t1" in status and "Seccomp:\t2" in status, status
    assert "CapEff:\t0000000000000000" in status, status
    # Its own, empty network namespace: not the machine's.
    assert os.readlink(m.path(f"/proc/{pid}/ns/net")) != os.readlink(m.path("/proc/1/ns/net"))
    r = m.sd("systemd-analyze", "security", "--no-pager", "printerfacts.service")
    level = float(r.stdout.rsplit("Overall exposure level for printerfacts.service:", 1)[1].split()[0])
    assert level < 2.0, r.stdout[-1500:]


def test_the_metrics_socket_serves_metrics_and_the_public_one_does_not(machine):
    m = machine
    status, body = request(m, METRICS, "/metrics")
    assert status == 200 and b"printerfacts_build_info" in body
    # The unit's sandbox (SystemCallFilter=@system-service) allows io_uring: the default loop is
    # the ring, unless the machine itself refuses it (then the journal says why).
    journal = m.sd("journalctl", "-u", "printerfacts.service", "-o", "cat").stdout
    refused = re.search(r"using epoll: (.*)", journal)
    loop = "epoll" if refused else "io_uring"
    assert f'printerfacts_io_backend{{backend="{loop}"}} 1'.encode() in body, (journal[-2000:], body)
    if refused:
        # What the unit's filter would not explain: the machine's (nspawn's own filter).
        print(f"io_uring refused in the machine: {refused.group(1)}")
    assert request(m, HTTP, "/metrics")[0] == 404
    assert m.sd("stat", "-c", "%a %U:%G", METRICS).stdout.strip() == "660 root:www-data"


def test_the_watchdog_restarts_a_hung_process_and_spares_a_healthy_one(machine):
    m = machine
    dropin = m.path("/run/systemd/system/printerfacts.service.d")
    os.makedirs(dropin, exist_ok=True)
    with open(os.path.join(dropin, "watchdog.conf"), "w") as f:
        f.write("[Service]\nWatchdogSec=3s\nTimeoutAbortSec=3s\n")
    try:
        m.sd("systemctl", "daemon-reload")
        m.sd("systemctl", "restart", "printerfacts.service")
        pid = main_pid(m)
        time.sleep(7)  # more than two watchdog intervals
        assert main_pid(m) == pid, "a healthy process is spared"
        restarts = int(m.show("printerfacts.service", "NRestarts"))
        m.sd("kill", "-STOP", str(pid))  # hung: no more WATCHDOG=1
        wait_until(lambda: int(m.show("printerfacts.service", "NRestarts")) > restarts
                 and m.show("printerfacts.service", "ActiveState") == "active", "the restart", timeout=60, every=0.05)
        assert main_pid(m) != pid
        journal = m.sd("journalctl", "-u", "printerfacts.service", "-o", "cat").stdout
        assert "Watchdog timeout" in journal or "watchdog" in journal.lower(), journal[-2000:]
        assert request(m)[0] == 200
    finally:
        os.remove(os.path.join(dropin, "watchdog.conf"))
        m.sd("systemctl", "daemon-reload")
        m.sd("systemctl", "restart", "printerfacts.service")


def test_template_instances_each_have_their_socket_and_restart_alone(machine):
    m = machine
    m.sd("systemctl", "start", "printerfacts@1.socket", "printerfacts@2.socket")
    try:
        for i in (1, 2):
            assert request(m, f"/run/printerfacts/http-{i}.sock")[0] == 200
        # The arguments are given once, in PRINTERFACTS_ARGS, for ExecStart= and ExecReload= alike.
        cmdline = m.sd("cat", f"/proc/{main_pid(m, 'printerfacts@1.service')}/cmdline").stdout.split("\0")
        assert "--threads" in cmdline and cmdline[cmdline.index("--threads") + 1] == "1", cmdline
        assert m.sd("ps", "-o", "user=", "-p", str(main_pid(m, "printerfacts@1.service"))).stdout.strip() \
            == "printerfacts"
        other = main_pid(m, "printerfacts@2.service")
        load = Load(m, "/run/printerfacts/http-1.sock", threads=2)
        try:
            time.sleep(0.5)
            m.sd("systemctl", "restart", "printerfacts@1.service")
            time.sleep(0.5)
        finally:
            ok, failures = load.stop()
        assert failures == [] and ok > 5, failures[:5]
        assert main_pid(m, "printerfacts@2.service") == other
    finally:
        m.sd("systemctl", "stop", "printerfacts@1.socket", "printerfacts@2.socket",
             "printerfacts@1.service", "printerfacts@2.service")


def test_the_standalone_unit_restarts_five_times_under_load_refusing_nothing(machine):
    """Without a .socket unit, the sockets live on in systemd's fd store (FDSTORE=1) between
    the old process and the new one: what systemd 252 keeps across `systemctl restart`."""
    m = machine
    m.sd("systemctl", "stop", "printerfacts.service", *SOCKETS)
    unit = "printerfacts-standalone.service"
    try:
        m.sd("systemctl", "start", unit)
        inode = os.stat(m.path(HTTP)).st_ino
        assert m.show(unit, "NFileDescriptorStore") == "2", "both sockets are in the store"
        pids = {main_pid(m, unit)}
        load = Load(m)
        try:
            for _ in range(5):
                time.sleep(2.5)  # systemd's start limit: at most 5 starts in 10 s
                m.sd("systemctl", "restart", unit)
                pids.add(main_pid(m, unit))
            time.sleep(1)
        finally:
            ok, failures = load.stop()
        print(f"standalone, 5 restarts: {ok + len(failures)} requests, {len(failures)} failed")
        assert failures == [], f"{len(failures)} of {ok + len(failures)} failed: {failures[:5]}"
        assert ok > 100 and len(pids) == 6
        assert os.stat(m.path(HTTP)).st_ino == inode, "the same socket all along, from the store"
        journal = m.sd("journalctl", "-u", unit, "-o", "cat").stdout
        assert "(inherited)" in journal and "kept 2 socket(s)" in journal, journal[-3000:]

        # SIGUSR2 to the main process: the binary now installed takes over; the unit follows.
        old_pid = main_pid(m, unit)
        load = Load(m)
        try:
            time.sleep(0.5)
            m.sd("systemctl", "kill", "--kill-who=main", "-s", "USR2", unit)
            wait_until(lambda: main_pid(m, unit) not in (old_pid, 0), "the unit's new main PID", timeout=30)
            wait_until(lambda: not os.path.exists(m.path(f"/proc/{old_pid}")), "the old process gone",
                       timeout=30)
            time.sleep(1)
        finally:
            ok, failures = load.stop()
        print(f"standalone, SIGUSR2: {ok + len(failures)} requests, {len(failures)} failed")
        assert failures == [], failures[:5]
        assert m.show(unit, "ActiveState") == "active" and m.show(unit, "NRestarts") == "0"
        journal = m.sd("journalctl", "-u", unit, "-o", "cat").stdout
        assert "Got notification message from PID" not in journal, "every message from the main PID"

        # What does not survive: `systemctl stop` empties the store and removes the directory;
        # until the next start, connecting fails (no file).
        m.sd("systemctl", "stop", unit)
        assert not os.path.exists(m.path(HTTP))
        m.sd("systemctl", "start", unit)
        assert request(m)[0] == 200
    finally:
        m.sd("systemctl", "stop", unit, check=False)
        m.sd("systemctl", "start", *SOCKETS)


def test_systemd_tmpfiles_clean_on_an_aged_socket_directory_leaves_the_service_reachable(machine):
    """A real `systemd-tmpfiles --clean` with an age on the socket's directory (what a
    tmpfiles.d line such as `d /run/printerfacts 0755 - - 1s` asks for): whatever it removes,
    the guard makes the socket again."""
    m = machine
    m.sd("systemctl", "stop", "printerfacts.service", *SOCKETS)
    unit = "printerfacts-standalone.service"
    try:
        m.sd("systemctl", "start", unit)
        with open(m.path("/etc/tmpfiles.d/printerfacts-age.conf"), "w") as f:
            f.write("d /run/printerfacts 0755 - - 1s\n")
        time.sleep(2.5)  # every file there older than the age (atime, mtime and ctime)
        files = [HTTP, METRICS, HTTP + ".lock", METRICS + ".lock"]
        m.sd("systemd-tmpfiles", "--clean", "/etc/tmpfiles.d/printerfacts-age.conf")
        removed = [p for p in files if not os.path.exists(m.path(p))]
        time.sleep(2.5)  # the guard's tick, had it removed a socket
        assert request(m)[0] == 200
        assert request(m, METRICS, "/healthz")[0] == 200
        journal = m.sd("journalctl", "-u", unit, "-o", "cat").stdout
        print(f"systemd-tmpfiles --clean removed {removed or 'nothing'}; reachable afterwards")
        for p in removed:
            if not p.endswith(".lock"):
                assert f"{p} was deleted from under us; made it again" in journal
        # A line that does remove it (`r`, as a cleanup job or a mistaken tmpfiles.d entry):
        # made again, with the unit's group and mode, by the service's own user.
        with open(m.path("/etc/tmpfiles.d/printerfacts-age.conf"), "w") as f:
            f.write(f"r {HTTP}\n")
        m.sd("systemd-tmpfiles", "--remove", "/etc/tmpfiles.d/printerfacts-age.conf")
        wait_until(lambda: os.path.exists(m.path(HTTP)), "the socket made again", timeout=5)
        assert m.sd("stat", "-c", "%a %U:%G", HTTP).stdout.strip() == "660 printerfacts:www-data"
        assert request(m)[0] == 200
        journal = m.sd("journalctl", "-u", unit, "-o", "cat").stdout
        assert f"the socket file {HTTP} was deleted from under us; made it again" in journal
    finally:
        os.unlink(m.path("/etc/tmpfiles.d/printerfacts-age.conf"))
        m.sd("systemctl", "stop", unit, check=False)
        m.sd("systemctl", "start", *SOCKETS)


def test_the_standalone_unit_binds_its_own_socket_with_the_group(machine):
    m = machine
    m.sd("systemctl", "stop", "printerfacts.service", *SOCKETS)
    try:
        m.sd("systemctl", "start", "printerfacts-standalone.service")
        assert m.show("printerfacts-standalone.service", "ActiveState") == "active"
        assert m.sd("stat", "-c", "%a %G", HTTP).stdout.strip() == "660 www-data"
        assert m.sd("stat", "-c", "%a %G", METRICS).stdout.strip() == "660 www-data"
        assert request(m)[0] == 200
        assert request(m, METRICS, "/metrics")[0] == 200
        pid = main_pid(m, "printerfacts-standalone.service")
        m.sd("systemctl", "reload", "printerfacts-standalone.service")
        time.sleep(0.5)
        assert main_pid(m, "printerfacts-standalone.service") == pid
        m.sd("systemctl", "stop", "printerfacts-standalone.service")
        assert m.show("printerfacts-standalone.service", "Result") == "success"
        assert not os.path.exists(m.path(HTTP)), "it removes its socket file when it stops"
    finally:
        m.sd("systemctl", "stop", "printerfacts-standalone.service", check=False)
        m.sd("systemctl", "start", *SOCKETS)
