"""Helpers for integration tests: start the real printerfacts binary and talk to it."""

import array
import fcntl
import os
import re
import resource
import shutil
import signal as signals
import socket
import subprocess
import tempfile
import termios
import threading
import time

import pytest

BINARY = os.environ.get("PRINTERFACTS_BIN") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "build", "dev", "printerfacts"))


class Server:
    """A printerfacts process with its stdout (access log) and stderr captured to files."""

    def __init__(self, workdir, args, env=None, wrapper=None, wait=True, binary=None,
                 stdout=None, stderr=None, preexec_fn=None):
        """`stdout`, `stderr`: a descriptor or file to give the process instead of the capture
        files (then stdout() or stderr() reads nothing it wrote). `preexec_fn` runs in the
        child before the binary (a sandbox to start it in)."""
        self.workdir = workdir
        self.stdout_path = os.path.join(workdir, f"stdout-{id(self)}.log")
        self.stderr_path = os.path.join(workdir, f"stderr-{id(self)}.log")
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        # Sanitizer settings pass through (the ThreadSanitizer run sets halt_on_error).
        full_env.update({k: v for k, v in os.environ.items() if k.endswith("SAN_OPTIONS")})
        # The event loop the suite runs on (CI runs it on both: tests/CMakeLists.txt).
        if os.environ.get("PRINTERFACTS_IO_BACKEND"):
            full_env["PRINTERFACTS_IO_BACKEND"] = os.environ["PRINTERFACTS_IO_BACKEND"]
        full_env.update(env or {})
        # Readiness is the server's own word, READY=1 on a notify socket, as systemd hears it,
        # unless the test brings a NOTIFY_SOCKET of its own.
        self._notify = None
        if "NOTIFY_SOCKET" not in full_env:
            self._notify_dir = tempfile.mkdtemp(prefix="pfn-", dir="/tmp")
            self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._notify.bind(os.path.join(self._notify_dir, "notify"))
            full_env["NOTIFY_SOCKET"] = os.path.join(self._notify_dir, "notify")
            # Read all along, as systemd does: the server says STATUS= every few seconds, and a
            # queue nobody reads would soon be full.
            self._messages, self._seen = [], 0
            self._messages_lock = threading.Lock()
            self._reader = threading.Thread(target=self._read_notifications, daemon=True)
            self._reader.start()
        cmd = (wrapper or []) + [binary or BINARY] + list(args)
        self.proc = subprocess.Popen(
            cmd, cwd=workdir, env=full_env,
            stdout=stdout if stdout is not None else open(self.stdout_path, "wb"),
            stderr=stderr if stderr is not None else open(self.stderr_path, "wb"),
            preexec_fn=preexec_fn)
        if wait:
            self.wait_ready()

    def stderr(self):
        if not os.path.exists(self.stderr_path):
            return ""
        with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stdout(self):
        if not os.path.exists(self.stdout_path):
            return ""
        with open(self.stdout_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def _read_notifications(self):
        sock = self._notify
        sock.settimeout(0.2)
        while self._notify is not None:  # until kill() closes it
            try:
                data = sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._messages_lock:
                self._messages.extend(m for m in data.decode().split("\n") if m)

    def wait_ready(self, timeout=60):
        """Waits for READY=1 on the notify socket (a generous deadline: a loaded machine may be
        slow to start an ASan build, and waiting longer costs nothing when it is fast)."""
        if self._notify is None:
            raise AssertionError("this server reports readiness on the test's own NOTIFY_SOCKET")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._messages_lock:
                if "READY=1" in self._messages[self._seen:]:
                    self._seen = self._messages.index("READY=1", self._seen) + 1
                    return
            if self.proc.poll() is not None:
                raise AssertionError(f"printerfacts exited with {self.proc.returncode}:\n{self.stderr()}")
            time.sleep(0.01)
        raise AssertionError(f"printerfacts not ready after {timeout}s:\n{self.stderr()}")

    def notifications(self):
        """The notify messages the server sent since the last call (or since readiness), e.g.
        ['RELOADING=1', 'READY=1']; STATUS= lines left out, as they come every few seconds."""
        time.sleep(0.05)  # what was sent just now is read by the reader thread
        with self._messages_lock:
            seen = self._messages[self._seen:]
            self._seen = len(self._messages)
        return [m for m in seen if not m.startswith("STATUS=")]

    def listening(self, count=1):
        """The addresses the server reports listening on, e.g. ['unix:./a.sock', 'tcp:[::]:4711'],
        once there are `count` of them: diagnostics are written by a thread of their own, so
        READY=1 can reach us before the lines said before it reach the file."""
        found = lambda: re.findall(r"listening on (\S+)", self.stderr())
        wait_until(lambda: len(found()) >= count, f"{count} 'listening on' line(s)", timeout=10)
        return found()

    def tcp_port(self):
        """The port of the process's listening TCP socket (--listen tcp:...:0 picks one), found
        the way `ss -ltnp` finds it: the socket inodes among its descriptors, looked up in the
        kernel's table of listening sockets."""
        inodes = set()
        for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                target = os.readlink(f"/proc/{self.proc.pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        for table in ("tcp6", "tcp"):
            with open(f"/proc/{self.proc.pid}/net/{table}") as f:
                for line in list(f)[1:]:
                    fields = line.split()
                    if fields[3] == "0A" and fields[9] in inodes:  # state LISTEN
                        return int(fields[1].rsplit(":", 1)[1], 16)
        raise AssertionError("no TCP listener: " + self.stderr())

    def signal(self, sig=signals.SIGTERM):
        self.proc.send_signal(sig)

    def stop(self, sig=signals.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._notify is not None:
            self._notify.close()
            shutil.rmtree(self._notify_dir, ignore_errors=True)
            self._notify = None


def socket_activated(workdir, path):
    """printerfacts as systemd starts it for a socket unit: systemd-socket-activate binds `path`,
    then, at the first connection, execs us with LISTEN_FDS=1 and our pid (and the notify socket
    readiness is reported on, which it passes on only when asked). Returned once `path` exists;
    --listen names a socket that must never be made."""
    server = Server(workdir, ["--listen", "unix:./ignored.sock"],
                    wrapper=["systemd-socket-activate", "-E", "NOTIFY_SOCKET", "-l", path], wait=False)
    # Listening, not only bound: the file exists from bind(), and a connect() before listen()
    # is refused (seen once on a loaded machine).
    wait_until(lambda: unix_listening(path), "systemd-socket-activate listens on the socket")
    return server


def unix_listening(path):
    """Whether a socket bound to `path` is listening, as /proc/net/unix says (its flags hold
    __SO_ACCEPTCON, 0x10000), without connecting to it. Only for a path bound once: the table
    lists a socket by the path it was bound to for as long as it is open, deleted or not."""
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == path and int(fields[3], 16) & 0x10000:
                return True
    return False


@pytest.fixture
def workdir():
    # Short paths: a Unix socket path may be at most 107 bytes.
    d = tempfile.mkdtemp(prefix="pf-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def start(workdir):
    servers = []

    def _start(*args, **kwargs):
        s = Server(workdir, args, **kwargs)
        servers.append(s)
        return s

    yield _start
    for s in servers:
        s.kill()
    # A sanitizer report fails the test that provoked it, even when the process was killed or
    # the report did not change its exit status.
    for s in servers:
        report = re.search(r"(WARNING|ERROR): \w*Sanitizer.*|runtime error: .*",
                           s.stderr())
        assert report is None, s.stderr()[report.start():report.start() + 4000]


def io_uring_refusal(binary=None):
    """Why io_uring cannot serve on this machine, as the server says it ("" when it can): a
    container's seccomp profile or kernel.io_uring_disabled. Tests of the io_uring loop by name
    skip there with this reason; everything else runs on the epoll fallback."""
    # --check creates nothing: the path only needs a directory that exists.
    r = subprocess.run([binary or BINARY, "--check", "--io-backend", "io_uring", "--listen",
                        "unix:/tmp/pf-probe.sock"], capture_output=True, text=True, timeout=60)
    return "" if r.returncode == 0 else r.stderr.strip()


def unix_connect(path, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def raise_fd_limit(n):
    """Lets the test process itself hold `n` descriptors (its many client sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def rss_kib(pid):
    """The resident memory of process `pid`, KiB (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def unread_by_peer(sock):
    """Bytes written to a Unix stream socket that its peer has not read yet (SIOCOUTQ): 0 once
    the server has read everything the test sent."""
    n = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, n, True)
    return n[0]


def wait_until(condition, what, timeout=30, every=0.005):
    """Polls `condition` every `every` seconds until it holds; fails naming `what` after
    `timeout` seconds. For conditions the test cannot be told of directly; the deadline is
    generous, so a loaded machine only makes the test slower, never red."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        time.sleep(every)


def wait_read(sock, timeout=30):
    """Waits until the server has read every byte sent on `sock`."""
    wait_until(lambda: unread_by_peer(sock) == 0, "the server read what was sent", timeout)


def read_until_closed(sock, limit=50_000_000):
    """Everything the peer sends until it closes. A close with unread input makes the kernel
    reset the connection instead of ending it (ECONNRESET): both are a close here, and the
    data that arrived before it is returned."""
    chunks = []
    try:
        while sum(map(len, chunks)) < limit:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def recv_until_closed(sock, limit=50_000_000):
    chunks = []
    total = 0
    while total < limit:
        data = sock.recv(65536)
        if not data:
            break
        chunks.append(data)
        total += len(data)
    return b"".join(chunks)


def read_response(sock, buffered=b""):
    """Reads one HTTP/1.1 response with a Content-Length (or none, for HEAD/304) from sock.

    Returns (status, headers dict lowercased, body, leftover bytes)."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a full head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest, lines[0]


def exchange(sock, raw, head=False):
    """Sends raw bytes and reads one response; returns (status, headers, body, leftover)."""
    sock.sendall(raw)
    status, headers, rest, _ = read_response(sock)
    length = 0 if head or status == 304 else int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length], rest[length:]


def metrics(where):
    """The samples of one /metrics scrape, as {"name{labels}": value}. `where` is the metrics
    socket's path, or a connected socket to scrape over (kept open)."""
    if isinstance(where, str):
        with unix_connect(where) as s:
            return metrics(s)
    status, _, body, _ = exchange(where, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200, status
    samples = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def curl(*args, check=True, prefix=()):
    """Runs curl; stdout and stderr come back as text with CR LF kept as sent."""
    r = subprocess.run([*prefix, "curl", "-sS", "--max-time", "10", *args], capture_output=True,
                       check=check)
    r.stdout = r.stdout.decode("utf-8", "replace")
    r.stderr = r.stderr.decode("utf-8", "replace")
    return r


@pytest.fixture
def system_group():
    """Creates a throwaway system group (root only) and removes it after the test."""
    created = []

    def _make(name):
        if os.geteuid() != 0:
            pytest.skip("creating a group needs root")
        subprocess.run(["groupdel", name], capture_output=True)
        subprocess.run(["groupadd", "--system", name], check=True)
        created.append(name)
        return name

    yield _make
    for name in created:
        subprocess.run(["groupdel", name], capture_output=True)
