"""--io-backend: the workers' event loop. io_uring where the kernel and the sandbox allow it,
epoll otherwise, said at start and in /metrics. The sandbox is a real seccomp filter, installed
in the server's process before it starts, as a container runtime's profile is: io_uring_setup(2)
fails with the errno such profiles return (EPERM, or ENOSYS)."""

import ctypes
import errno
import os
import re
import struct
import subprocess

import pytest

from conftest import (BINARY, exchange, io_uring_refusal, metrics, read_response, unix_connect,
                      wait_until)

NR_IO_URING_SETUP = 425  # x86_64, arm64 and every architecture since Linux 5.1 (unified table)
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7


def refuse_io_uring(err):
    """A preexec_fn: installs a seccomp filter that fails io_uring_setup(2) with `err` and allows
    everything else (after PR_SET_NO_NEW_PRIVS, as an unprivileged sandbox must)."""
    def install():
        libc = ctypes.CDLL(None, use_errno=True)
        arch = AUDIT_ARCH_X86_64 if os.uname().machine == "x86_64" else AUDIT_ARCH_AARCH64
        ld_abs, jeq, ret = 0x20, 0x15, 0x06
        program = [
            (ld_abs, 0, 0, 4),                         # A = seccomp_data.arch
            (jeq, 0, 3, arch),                         # another ABI: allow
            (ld_abs, 0, 0, 0),                         # A = seccomp_data.nr
            (jeq, 0, 1, NR_IO_URING_SETUP),
            (ret, 0, 0, 0x00050000 | err),             # SECCOMP_RET_ERRNO | err
            (ret, 0, 0, 0x7FFF0000),                   # SECCOMP_RET_ALLOW
        ]
        filters = b"".join(struct.pack("HBBI", *f) for f in program)
        buf = ctypes.create_string_buffer(filters)

        class Fprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        prog = Fprog(len(program), ctypes.addressof(buf))
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
        if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
            raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")
    return install


def fact(sock_path):
    with unix_connect(sock_path) as s:
        status, _, body, _ = exchange(s, b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n")
    return status, body


@pytest.mark.parametrize("err, why", [
    (errno.EPERM, "a seccomp filter or security module forbids it"),
    (errno.ENOSYS, "a seccomp filter that refuses it"),
])
def test_auto_falls_back_to_epoll_in_a_sandbox_that_refuses_io_uring(start, workdir, err, why):
    sock = os.path.join(workdir, "pf.sock")
    server = start("--listen", f"unix:{sock}", "--metrics-listen", f"unix:{workdir}/m.sock",
                   env={"PRINTERFACTS_IO_BACKEND": "auto"}, preexec_fn=refuse_io_uring(err))
    wait_until(lambda: "ready with" in server.stderr(), "the ready line")
    log = server.stderr()
    assert re.search(r"using epoll: .*" + re.escape(why), log), log
    assert re.search(r"ready with \d+ thread\(s\) on epoll", log), log
    assert fact(sock)[0] == 200
    samples = metrics(f"{workdir}/m.sock")
    assert samples.get('printerfacts_io_backend{backend="epoll"}') == 1, samples


def test_insisting_on_io_uring_where_it_is_refused_names_the_flag_and_the_way_out(workdir):
    r = subprocess.run([BINARY, "--io-backend", "io_uring", "--listen", f"unix:{workdir}/pf.sock"],
                       capture_output=True, text=True, timeout=60,
                       preexec_fn=refuse_io_uring(errno.EPERM))
    assert r.returncode == 69, (r.returncode, r.stderr)  # EX_UNAVAILABLE
    assert "--io-backend io_uring: io_uring_setup(2) is refused (EPERM)" in r.stderr, r.stderr
    assert "use --io-backend auto" in r.stderr, r.stderr
    assert not os.path.exists(f"{workdir}/pf.sock")  # refused before any socket was made


@pytest.mark.parametrize("backend", ["epoll", "io_uring"])
def test_the_loop_asked_for_serves_and_says_so(start, workdir, backend):
    if backend == "io_uring" and (why := io_uring_refusal()):
        pytest.skip(f"io_uring is unavailable on this machine: {why}")
    sock = os.path.join(workdir, "pf.sock")
    server = start("--listen", f"unix:{sock}", "--io-backend", backend, "--threads", "2",
                   "--metrics-listen", f"unix:{workdir}/m.sock")
    wait_until(lambda: "ready with" in server.stderr(), "the ready line")
    assert re.search(rf"ready with 2 thread\(s\) on {backend}\b", server.stderr()), server.stderr()
    assert "using epoll" not in server.stderr()
    for _ in range(20):
        status, body = fact(sock)
        assert status == 200 and body.strip()
    samples = metrics(f"{workdir}/m.sock")
    assert samples.get(f'printerfacts_io_backend{{backend="{backend}"}}') == 1, samples
    # --check says which loop a start would take.
    r = subprocess.run([BINARY, "--check", "--io-backend", backend, "--listen",
                        f"unix:{workdir}/other.sock"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.rstrip().endswith(f"on {backend}"), r.stdout + r.stderr


@pytest.mark.parametrize("backend", ["epoll", "io_uring"])
def test_a_burst_of_connections_is_spread_over_the_workers(start, workdir, backend):
    """The kernel wakes the first waiting worker for each new connection: without load-aware
    admission the worker awake takes a whole burst (it did: 64 of 64 on io_uring, 56/4/3/1 on
    epoll). Each worker well above the mean stops accepting until it is back."""
    if backend == "io_uring" and (why := io_uring_refusal()):
        pytest.skip(f"io_uring is unavailable on this machine: {why}")
    sock = os.path.join(workdir, "pf.sock")
    start("--listen", f"unix:{sock}", "--io-backend", backend, "--threads", "4",
          "--metrics-listen", f"unix:{workdir}/m.sock", "--access-log", "off")
    clients = []
    try:
        for _ in range(128):
            s = unix_connect(sock)
            s.sendall(b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n")
            clients.append(s)
        for s in clients:
            assert read_response(s)[0] == 200
        samples = metrics(f"{workdir}/m.sock")
        per_worker = [int(samples[f'printerfacts_worker_connections_open{{worker="{w}"}}'])
                      for w in range(4)]
        assert sum(per_worker) == 128 + 1, per_worker  # and the scrape's own
        # Mean 32: nobody more than 8 above it (plus the connection that crossed the line, and
        # the scrape's), so everyone took some.
        assert max(per_worker) <= 32 + 8 + 2, per_worker
        assert min(per_worker) > 0, per_worker
    finally:
        for s in clients:
            s.close()
