"""The socket file: created safely, with the configured permissions, and never wrongly removed."""

import grp
import os
import socket
import stat
import subprocess
import time

import pytest

from conftest import Server, curl, unix_connect, wait_until


def test_socket_has_default_mode_0660(start, workdir):
    start("--listen", "unix:./pf.sock")
    st = os.lstat(os.path.join(workdir, "pf.sock"))
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660


def test_socket_mode_flag(start, workdir):
    start("--listen", "unix:./pf.sock", "--socket-mode", "0600")
    assert stat.S_IMODE(os.lstat(os.path.join(workdir, "pf.sock")).st_mode) == 0o600


def test_umask_does_not_widen_or_narrow_the_mode(workdir):
    # A permissive umask must not leave the socket wider than configured, and a strict one must
    # not make it narrower.
    for umask, expected in ((0o000, 0o660), (0o077, 0o660)):
        path = os.path.join(workdir, f"u{umask}.sock")
        s = Server(workdir, ["--listen", f"unix:{path}"], wrapper=["sh", "-c", f'umask {umask:03o}; exec "$0" "$@"'])
        try:
            assert stat.S_IMODE(os.lstat(path).st_mode) == expected
        finally:
            s.stop()


@pytest.fixture
def test_group(system_group):
    return system_group("pftest")


def test_socket_group_and_who_may_connect(start, workdir, test_group):
    start("--listen", "unix:./pf.sock", "--socket-group", test_group)
    path = os.path.join(workdir, "pf.sock")
    st = os.lstat(path)
    assert st.st_gid == grp.getgrnam(test_group).gr_gid
    assert stat.S_IMODE(st.st_mode) == 0o660

    # nobody is neither the owner nor in the group: the kernel refuses the connection.
    r = curl("--unix-socket", path, "http://x/fact", check=False, prefix=["runuser", "-u", "nobody", "--"])
    assert r.returncode != 0
    assert "Permission denied" in r.stderr or "Couldn't connect" in r.stderr

    # The same user, given the group for this one command, gets a fact.
    r = curl("--unix-socket", path, "http://x/fact", check=False,
             prefix=["runuser", "-u", "nobody", "-g", "nogroup", "-G", test_group, "--"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("\n")


def test_unknown_group_is_a_startup_error(workdir):
    s = Server(workdir, ["--listen", "unix:./pf.sock", "--socket-group", "no-such-group"], wait=False)
    assert s.proc.wait(timeout=10) != 0
    assert 'no group named "no-such-group"' in s.stderr()
    assert not os.path.exists(os.path.join(workdir, "pf.sock"))


def test_stale_socket_is_replaced(start, workdir):
    path = os.path.join(workdir, "pf.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # a crashed server's leftover: the file exists, nobody listens
    server = start("--listen", "unix:./pf.sock")
    # Said before READY=1, written by the diagnostics' own thread: it follows a moment later.
    wait_until(lambda: "removed 1 stale socket" in server.stderr(), "the stale socket said")
    assert curl("--unix-socket", path, "http://x/healthz").stdout == "ok\n"


def test_live_socket_is_refused_and_keeps_serving(start, workdir):
    first = start("--listen", "unix:./pf.sock")
    path = os.path.join(workdir, "pf.sock")
    inode = os.lstat(path).st_ino
    second = Server(workdir, ["--listen", "unix:./pf.sock"], wait=False)
    assert second.proc.wait(timeout=10) == 69  # EX_UNAVAILABLE
    assert "another instance is listening on ./pf.sock" in second.stderr()
    assert os.lstat(path).st_ino == inode
    assert curl("--unix-socket", path, "http://x/healthz").stdout == "ok\n"
    assert first.proc.poll() is None


def test_regular_file_is_refused_and_left_intact(workdir):
    path = os.path.join(workdir, "pf.sock")
    with open(path, "w") as f:
        f.write("important data\n")
    s = Server(workdir, ["--listen", f"unix:{path}"], wait=False)
    assert s.proc.wait(timeout=10) == 78  # EX_CONFIG: the path given is wrong
    assert f"{path} exists and is not a socket; refusing to remove it" in s.stderr()
    with open(path) as f:
        assert f.read() == "important data\n"


def test_path_too_long_names_the_limit(workdir):
    path = "/tmp/" + "x" * 120 + ".sock"
    s = Server(workdir, ["--listen", f"unix:{path}"], wait=False)
    assert s.proc.wait(timeout=10) != 0
    assert "at most 107 bytes" in s.stderr()


def test_missing_directory_names_the_path(workdir):
    s = Server(workdir, ["--listen", "unix:/nonexistent-dir/pf.sock"], wait=False)
    assert s.proc.wait(timeout=10) == 66  # EX_NOINPUT
    assert ("cannot create the socket /nonexistent-dir/pf.sock: the directory /nonexistent-dir "
            "does not exist") in s.stderr()


def test_sigterm_removes_the_socket_file(start, workdir):
    server = start("--listen", "unix:./pf.sock")
    assert server.stop() == 0
    assert not os.path.exists(os.path.join(workdir, "pf.sock"))


def test_sigterm_the_moment_ready_is_printed_still_shuts_down_cleanly(workdir):
    # A supervisor may signal as soon as the service reports readiness. The handler must be in
    # place by then, or the default action kills the process and leaves the socket file behind.
    for _ in range(25):
        s = Server(workdir, ["--listen", "unix:./pf.sock"], wait=False)
        s.wait_ready()  # returns the moment READY=1 arrives: the signal follows within microseconds
        assert s.stop() == 0, s.stderr()
        s.kill()  # only closes the notify socket: the process has exited
        assert not os.path.exists(os.path.join(workdir, "pf.sock"))


def test_a_replaced_socket_is_not_removed_by_the_old_server(start, workdir):
    # The old server's file is swapped for another process's socket (as a successor would do);
    # the old server must leave the new one alone when it exits. The identity check at exit
    # alone, without the socket guard, which would make the file again the moment it is
    # unlinked, or drain at the sight of the successor (test_socket_life has those).
    old = start("--listen", "unix:./pf.sock", "--socket-guard", "off")
    path = os.path.join(workdir, "pf.sock")
    os.unlink(path)
    successor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    successor.bind(path)
    successor.listen(1)
    assert old.stop() == 0
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    probe = unix_connect(path)
    probe.close()
    successor.close()


def test_sockpath_environment_variable(start, workdir):
    start(env={"SOCKPATH": os.path.join(workdir, "env.sock")})
    assert curl("--unix-socket", os.path.join(workdir, "env.sock"), "http://x/healthz").stdout == "ok\n"


def test_simultaneous_starts_leave_exactly_one_server(workdir):
    path = os.path.join(workdir, "pf.sock")
    servers = [Server(workdir, ["--listen", f"unix:{path}"], wait=False) for _ in range(4)]
    try:
        import time
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            exited = [s for s in servers if s.proc.poll() is not None]
            if len(exited) == 3:
                break
            time.sleep(0.05)
        running = [s for s in servers if s.proc.poll() is None]
        assert len(running) == 1
        for s in servers:
            if s.proc.poll() is not None:
                assert s.proc.returncode == 69, s.stderr()  # EX_UNAVAILABLE: the address is taken
                assert ("another instance is listening" in s.stderr()
                        or "another instance has been starting" in s.stderr())
        running[0].wait_ready()
        assert curl("--unix-socket", path, "http://x/healthz").stdout == "ok\n"
    finally:
        for s in servers:
            s.kill()


def test_world_accessible_mode_needs_allow_world(start, workdir):
    s = Server(workdir, ["--listen", "unix:./pf.sock", "--socket-mode", "0666"], wait=False)
    assert s.proc.wait(timeout=10) == 78  # EX_CONFIG
    assert "lets every local user connect" in s.stderr()
    assert not os.path.exists(os.path.join(workdir, "pf.sock"))
    start("--listen", "unix:./w.sock", "--socket-mode", "0666", "--allow-world")
    assert stat.S_IMODE(os.lstat(os.path.join(workdir, "w.sock")).st_mode) == 0o666


def test_socket_under_tmp_and_unsearchable_parent_are_warned_about(start, workdir):
    private = os.path.join(workdir, "private")
    os.mkdir(private, 0o700)
    server = start("--listen", f"unix:{private}/pf.sock")
    wait_until(lambda: f"directory {private} is not searchable" in server.stderr(), "the warnings")
    assert "world-writable temporary directory" in server.stderr()
