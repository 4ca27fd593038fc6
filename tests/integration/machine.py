"""A Debian 12 machine with systemd as PID 1, booted with systemd-nspawn, for testing the
shipped units on the real engine rather than on a stand-in.

The root tree is made once with debootstrap from the mirror apt already uses, with the
package's dependencies installed, and cached (it takes about a minute); every boot runs on a
throwaway overlay of it (--volatile=overlay), so tests never change the cache."""

import fcntl
import glob
import hashlib
import os
import re
import shutil
import subprocess
import threading
import time

from conftest import recv_until_closed, unix_connect

CACHE = os.environ.get("PRINTERFACTS_TEST_CACHE", "/var/cache/printerfacts-tests")
# What the tests use inside the machine, beyond the package's own dependencies.
BASE_PACKAGES = ["systemd", "systemd-sysv", "dbus", "curl", "adduser", "procps"]
SUITE = "bookworm"
# Where the package's socket units listen, inside the machine.
HTTP = "/run/printerfacts/http.sock"
METRICS = "/run/printerfacts/metrics.sock"


def apt_mirror():
    """The Debian mirror this machine's apt is configured with (Deb822 or one-line sources)."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for line in open(path):
            m = re.match(r"URIs:\s*(\S+)", line)
            if m:
                return m.group(1)
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        if os.path.exists(path):
            for line in open(path):
                m = re.match(r"deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", line)
                if m:
                    return m.group(1)
    raise AssertionError("no Debian mirror found in apt's sources")


def run(cmd, timeout=600, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def root_tree(depends):
    """The cached root tree for a package that `depends` on these (a Depends: field value),
    made first if need be. Concurrent callers wait for one another."""
    key = hashlib.sha256("\n".join([SUITE, *BASE_PACKAGES, depends]).encode()).hexdigest()[:16]
    os.makedirs(CACHE, exist_ok=True)
    root = os.path.join(CACHE, f"root-{key}")
    with open(os.path.join(CACHE, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(root, ".complete")):
            return root
        # Trees for other dependency sets are stale: keep the cache to one tree.
        for old in glob.glob(os.path.join(CACHE, "root-*")):
            shutil.rmtree(old, ignore_errors=True)
        building = root + ".building"
        run(["debootstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES), SUITE,
             building, apt_mirror()], timeout=1200)
        shutil.copy("/etc/resolv.conf", os.path.join(building, "etc", "resolv.conf"))
        run(["chroot", building, "apt-get", "satisfy", "-y", "-qq", "--no-install-recommends", depends],
            timeout=1200, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive"})
        run(["chroot", building, "apt-get", "clean"])
        open(os.path.join(building, ".complete"), "w").close()
        os.rename(building, root)
        return root


class Machine:
    """One boot of `root` with systemd as PID 1, no network but loopback."""

    def __init__(self, root, name, log_path):
        self.name = name
        self.log_path = log_path
        self.nspawn = subprocess.Popen(
            # Without a host systemd, nspawn needs both --register=no and --keep-unit.
            ["systemd-nspawn", "-q", "-D", root, "-b", "-M", name, "--register=no", "--keep-unit",
             "--link-journal=no", "--private-network", "--volatile=overlay"],
            stdin=subprocess.DEVNULL, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        self.pid1 = self._wait_for_pid1()
        deadline = time.monotonic() + 120
        while not os.path.exists(self.path("/run/systemd/private")):
            self._check_alive()
            if time.monotonic() > deadline:
                raise AssertionError("systemd did not start in the machine:\n" + self.console())
            time.sleep(0.05)
        state = self.sd("systemctl", "is-system-running", "--wait", check=False, timeout=120).stdout.strip()
        if state not in ("running", "degraded"):
            raise AssertionError(f"the machine is {state!r}:\n" + self.console())

    def _check_alive(self):
        if self.nspawn.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited {self.nspawn.returncode}:\n" + self.console())

    def _wait_for_pid1(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self._check_alive()
            r = subprocess.run(["pgrep", "-P", str(self.nspawn.pid), "-x", "systemd"],
                               capture_output=True, text=True)
            if r.stdout.strip():
                return int(r.stdout.split()[0])
            time.sleep(0.05)
        raise AssertionError("no systemd in the machine:\n" + self.console())

    def console(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()[-5000:]

    def path(self, inside):
        """The host's path to a file inside the machine (through PID 1's root)."""
        return f"/proc/{self.pid1}/root{inside}"

    def sd(self, *cmd, check=True, timeout=60):
        """Runs a command inside the machine, in all of PID 1's namespaces."""
        r = subprocess.run(["nsenter", "-t", str(self.pid1), "-a", "--", "env", "-i",
                            "PATH=/usr/sbin:/usr/bin:/sbin:/bin", *cmd],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {r.returncode} in the machine:\n{r.stdout}\n{r.stderr}")
        return r

    def show(self, unit, prop):
        """One property of a unit, as `systemctl show` reports it."""
        return self.sd("systemctl", "show", "-P", prop, unit).stdout.strip()

    def poweroff(self):
        if self.nspawn.poll() is None:
            self.sd("systemctl", "poweroff", check=False)
            try:
                self.nspawn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.nspawn.pid, 9)
                self.nspawn.wait()
        # nspawn leaves empty cgroups behind when the host has no systemd.
        for hierarchy in ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"):
            for leftover in ("payload", "supervisor"):
                path = os.path.join(hierarchy, leftover)
                if os.path.isdir(path):
                    try:
                        os.rmdir(path)
                    except OSError:
                        pass


def request(m, path=HTTP, target="/fact", timeout=10):
    """One request on a new connection from the host, as nginx would make it; (status, body)."""
    with unix_connect(m.path(path), timeout) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = recv_until_closed(s)  # a reset raises: it is a failed request
    if not data.startswith(b"HTTP/1.1 "):
        raise ConnectionError(f"no response, got {data[:100]!r}")
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


class Load:
    """Requests back to back from a few threads until stopped; counts what failed and why."""

    def __init__(self, m, path=HTTP, threads=4):
        self.ok, self.failures, self._stop = 0, [], threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(m, path)) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self, m, path):
        while not self._stop.is_set():
            try:
                status, _ = request(m, path)
                outcome = None if status == 200 else f"status {status}"
            except Exception as e:  # noqa: BLE001 - a refused, reset or empty answer all count
                outcome = repr(e)
            with self._lock:
                if outcome:
                    self.failures.append(outcome)
                else:
                    self.ok += 1

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        return self.ok, self.failures
