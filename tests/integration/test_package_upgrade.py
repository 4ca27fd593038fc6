"""The package's life as an operator lives it, with apt on the real systemd 252 (a Debian 12
machine booted with systemd-nspawn): version N installed, serving under load; `apt install` of
N+1 while the load runs: the service runs the new binary afterwards and no request failed; the
same for the standalone unit (N+1 -> N+2); then `apt remove` and `apt purge` leave nothing
running and no socket behind.

The packages are built the Debian way (scripts/package: debhelper, dpkg-buildpackage); N+1 and
N+2 are the same tree with a newer debian/changelog entry, so each is a different binary that
names its version. The tests run in order on one machine: each starts where the last ended."""

import os
import shutil
import subprocess
import time

import pytest

from conftest import wait_until
from machine import HTTP, METRICS, Load, Machine, request, root_tree
from package import build_deb, build_next, changelog_version

N = changelog_version()
VERSIONS = [N, f"{N}+1", f"{N}+2"]


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    work = tmp_path_factory.mktemp("upgrade")
    debs = [build_deb(), build_next(VERSIONS[1]), build_next(VERSIONS[2])]
    depends = subprocess.run(["dpkg-deb", "-f", debs[0], "Depends"], capture_output=True, text=True,
                             check=True).stdout.strip()
    m = Machine(root_tree(depends), f"pfup{os.getpid()}", str(work / "console.log"))
    try:
        for deb in debs:
            shutil.copy(deb, m.path("/root/"))
        m.debs = {v: "/root/" + os.path.basename(d) for v, d in zip(VERSIONS, debs)}
        yield m
    finally:
        m.poweroff()


def apt(m, *args):
    """apt-get as an operator runs it; the machine has no network, and needs none: every
    dependency is installed already."""
    return m.sd("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-y", "-q", *args, timeout=300)


def installed_version(m):
    r = m.sd("dpkg-query", "-W", "-f=${Status} ${Version}", "printerfacts", check=False)
    return r.stdout.strip()


def serving_version(m):
    """The version the running server reports in printerfacts_build_info."""
    status, body = request(m, METRICS, "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith("printerfacts_build_info{"):
            return line.split('version="', 1)[1].split('"', 1)[0]
    raise AssertionError("no printerfacts_build_info in /metrics")


def upgrade_under_load(m, unit, version):
    """Installs `version` with apt while four clients make requests on new connections; returns
    (requests served, failures, main PID before, main PID after)."""
    before_pid = int(m.show(unit, "MainPID"))
    inode = os.stat(m.path(HTTP)).st_ino
    load = Load(m)
    wait_until(lambda: load.ok >= 200, "requests served before the upgrade", timeout=60)
    apt(m, "install", m.debs[version])
    served_at_upgrade = load.ok
    # Requests after the restart, on the new process.
    wait_until(lambda: load.ok >= served_at_upgrade + 200, "requests served after the upgrade", timeout=60)
    ok, failures = load.stop()
    assert os.stat(m.path(HTTP)).st_ino == inode, "the socket was kept, not made again"
    return ok, failures, before_pid, int(m.show(unit, "MainPID"))


def test_apt_installs_enables_and_starts_the_sockets(machine):
    m = machine
    apt(m, "install", m.debs[N])
    assert installed_version(m) == f"install ok installed {N}"
    # dh_installsystemd's scripts: the sockets enabled and listening, the service started by
    # the first request, as the printerfacts user that postinst created.
    for unit in ("printerfacts.socket", "printerfacts-metrics.socket"):
        assert m.sd("systemctl", "is-enabled", unit).stdout.strip() == "enabled"
        assert m.show(unit, "ActiveState") == "active"
    assert m.show("printerfacts.service", "ActiveState") == "inactive"
    assert request(m)[0] == 200
    assert m.show("printerfacts.service", "ActiveState") == "active"
    assert serving_version(m) == N
    assert m.sd("ps", "-o", "user=", "-p", m.show("printerfacts.service", "MainPID")).stdout.strip() == "printerfacts"


def test_apt_upgrade_restarts_the_service_on_the_new_binary_and_no_request_fails(machine):
    m = machine
    ok, failures, before, after = upgrade_under_load(m, "printerfacts.service", VERSIONS[1])
    print(f"\nsocket-activated unit, apt install {N} -> {VERSIONS[1]} under load: {ok} served, "
          f"{len(failures)} failed")
    assert failures == [], failures[:10]
    assert installed_version(m) == f"install ok installed {VERSIONS[1]}"
    assert after != before, "the service was restarted"
    assert serving_version(m) == VERSIONS[1]
    exe = os.readlink(m.path(f"/proc/{after}/exe"))
    assert exe == "/usr/bin/printerfacts", exe  # not "(deleted)": the installed file runs
    # The socket units were neither stopped nor restarted.
    assert m.show("printerfacts.socket", "NRefused") == "0"
    assert int(m.show("printerfacts.service", "NRestarts")) == 0


def test_apt_upgrade_of_the_standalone_unit_keeps_its_sockets_in_the_fd_store(machine):
    m = machine
    # An operator who chose the unit that binds its own socket (docs/deployment.md).
    m.sd("systemctl", "disable", "--now", "printerfacts.socket", "printerfacts-metrics.socket")
    m.sd("systemctl", "enable", "--now", "printerfacts-standalone.service")
    wait_until(lambda: os.path.exists(m.path(HTTP)), "the standalone unit's socket", timeout=30)
    assert serving_version(m) == VERSIONS[1]
    ok, failures, before, after = upgrade_under_load(m, "printerfacts-standalone.service", VERSIONS[2])
    print(f"standalone unit, apt install {VERSIONS[1]} -> {VERSIONS[2]} under load: {ok} served, "
          f"{len(failures)} failed")
    assert failures == [], failures[:10]
    assert after != before, "the service was restarted"
    assert serving_version(m) == VERSIONS[2]
    # The upgrade did not start the disabled socket units (they conflict with this one).
    assert m.show("printerfacts.socket", "ActiveState") == "inactive"
    assert m.show("printerfacts-standalone.service", "ActiveState") == "active"


def running(m):
    """printerfacts processes and active printerfacts units in the machine."""
    procs = m.sd("pgrep", "-a", "-x", "printerfacts", check=False).stdout.strip()
    units = m.sd("systemctl", "list-units", "--no-legend", "--plain", "--state=active,activating,deactivating",
                 "printerfacts*", check=False).stdout.strip()
    return procs, units


def test_apt_remove_stops_everything_and_purge_leaves_nothing(machine):
    m = machine
    # A template instance too: the prerm stops instances it cannot name.
    m.sd("systemctl", "start", "printerfacts@blue.socket")
    assert request(m, "/run/printerfacts/http-blue.sock")[0] == 200
    apt(m, "remove", "printerfacts")
    deadline = time.monotonic() + 30
    while running(m) != ("", "") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running(m) == ("", ""), running(m)
    assert not os.path.exists(m.path("/usr/bin/printerfacts"))
    for sock in (HTTP, METRICS, "/run/printerfacts/http-blue.sock"):
        assert not os.path.lexists(m.path(sock)), f"{sock} left behind"
    # remove keeps the configuration (conffiles) and the user, as Debian packages do.
    assert os.path.exists(m.path("/etc/printerfacts/printerfacts.toml"))
    assert installed_version(m).startswith("deinstall ok config-files")

    apt(m, "purge", "printerfacts")
    assert installed_version(m) == "" or "not-installed" in installed_version(m)
    for path in ("/etc/printerfacts", "/etc/default/printerfacts", "/var/log/printerfacts",
                 "/etc/systemd/system/sockets.target.wants/printerfacts.socket",
                 "/etc/systemd/system/multi-user.target.wants/printerfacts-standalone.service"):
        assert not os.path.lexists(m.path(path)), f"{path} left behind by purge"
    assert m.sd("getent", "passwd", "printerfacts", check=False).returncode != 0
    assert running(m) == ("", "")
