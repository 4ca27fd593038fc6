"""TCP for development (dual-stack), several listeners at once, and systemd socket activation."""

import os
import stat

from conftest import Server, curl, socket_activated, wait_until


def test_tcp_dual_stack_serves_ipv4_and_ipv6(start):
    server = start("--listen", "tcp:[::]:0")
    port = server.tcp_port()
    assert server.listening() == [f"tcp:[::]:{port}"]
    assert curl(f"http://127.0.0.1:{port}/healthz").stdout == "ok\n"
    assert curl(f"http://[::1]:{port}/healthz").stdout == "ok\n"


def test_tcp_peer_is_logged_as_plain_ipv4(start):
    server = start("--listen", "tcp:[::]:0")
    curl(f"http://127.0.0.1:{server.tcp_port()}/fact")
    server.stop()
    assert " tcp:127.0.0.1:" in server.stdout()


def test_port_environment_variable(start):
    import socket
    probe = socket.socket(socket.AF_INET6)
    probe.bind(("::", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = start(env={"PORT": str(port)})
    assert server.listening() == [f"tcp:[::]:{port}"]
    assert curl(f"http://127.0.0.1:{port}/healthz").stdout == "ok\n"


def test_unix_and_tcp_at_once(start, workdir):
    server = start("--listen", "unix:./pf.sock", "--listen", "tcp:127.0.0.1:0")
    assert curl("--unix-socket", os.path.join(workdir, "pf.sock"), "http://x/healthz").stdout == "ok\n"
    assert curl(f"http://127.0.0.1:{server.tcp_port()}/healthz").stdout == "ok\n"


def test_port_in_use_is_a_startup_error_naming_the_address(start, workdir):
    first = start("--listen", "tcp:127.0.0.1:0")
    port = first.tcp_port()
    second = Server(workdir, ["--listen", f"tcp:127.0.0.1:{port}"], wait=False)
    assert second.proc.wait(timeout=10) == 69  # EX_UNAVAILABLE
    assert f"cannot listen on tcp:127.0.0.1:{port}: the port is in use by another process" in second.stderr()


def test_a_failed_second_listener_removes_the_first_socket_file(workdir):
    s = Server(workdir, ["--listen", "unix:./pf.sock", "--listen", "unix:/nonexistent/x.sock"], wait=False)
    assert s.proc.wait(timeout=10) == 66
    assert not os.path.exists(os.path.join(workdir, "pf.sock"))


def test_systemd_socket_activation(workdir):
    path = os.path.join(workdir, "activated.sock")
    server = socket_activated(workdir, path)
    try:
        # The first connection is what makes systemd-socket-activate exec us.
        assert curl("--unix-socket", path, "http://x/healthz").stdout == "ok\n"
        server.wait_ready()
        # Said by the log's own thread: it may reach the file just after READY=1 reached us.
        wait_until(lambda: f"listening on unix:{path} (from systemd)" in server.stderr(),
                   "the 'listening on ... (from systemd)' line", timeout=10)
        assert not os.path.exists(os.path.join(workdir, "ignored.sock"))
        assert curl("--unix-socket", path, "http://x/fact").stdout.endswith("\n")
        assert server.stop() == 0
        # The socket belongs to systemd: we neither removed nor replaced it.
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
    finally:
        server.kill()
