"""`printerfacts doctor --as USER`: each way nginx's connect() fails, found and named; a real
connection as the user when nothing is wrong. Runs as root (the suite does)."""

import contextlib
import os
import subprocess

import pytest

from conftest import BINARY, wait_until
from nginx import NGINX, free_port


# A pid no process can have (above the kernel's pid_max): the doctor checks no nginx.
NO_NGINX = ("--nginx-pid", "999999999")


def doctor(user, sock, *extra):
    r = subprocess.run([BINARY, "doctor", "--as", user, "--listen", f"unix:{sock}", *extra],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


@contextlib.contextmanager
def running_nginx(workdir, sock, wrap=()):
    """A bare nginx (workers as www-data) proxying to `sock`; `wrap` runs it in, say, a mount
    namespace of its own. Yields the master's pid once its worker is up; stops it after."""
    port = free_port()
    conf = os.path.join(workdir, "doctor-nginx.conf")
    pid_file = os.path.join(workdir, "doctor-nginx.pid")
    with open(conf, "w") as f:
        f.write(f"""
user www-data;
worker_processes 1;
daemon off;
master_process on;
pid {pid_file};
error_log {workdir}/doctor-nginx.error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://unix:{sock}; }} }}
}}
""")
    proc = subprocess.Popen([*wrap, NGINX, "-c", conf, "-e", f"{workdir}/doctor-nginx.error.log"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def master_with_worker():
            assert proc.poll() is None, "nginx exited"
            text = open(pid_file).read().strip() if os.path.exists(pid_file) else ""
            # The worker too: its groups are what the doctor checks.
            return text and subprocess.run(["pgrep", "-P", text], capture_output=True).returncode == 0
        wait_until(master_with_worker, "nginx and its worker to start", every=0.05)
        yield int(open(pid_file).read())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def serve(start, sock, group="www-data"):
    """printerfacts on `sock`, the socket given `group` (None: the server's own, root)."""
    return start("--listen", f"unix:{sock}", *(("--socket-group", group) if group else ()))


def test_all_well_it_connects_as_the_user_and_gets_an_answer(start, workdir):
    sock = f"{workdir}/http.sock"
    serve(start, sock)
    code, out = doctor("www-data", sock, *NO_NGINX)
    assert code == 0, out
    assert "ok: connected as www-data and asked /healthz: " in out and " 200 ok" in out, out
    assert "result: www-data can connect" in out


def test_a_directory_the_user_cannot_search(start, workdir):
    private = os.path.join(workdir, "private")
    os.mkdir(private, 0o700)
    sock = f"{private}/http.sock"
    serve(start, sock)
    code, out = doctor("www-data", sock, *NO_NGINX)
    assert code == 1, out
    assert f"FAIL: www-data cannot search {private} (mode 0700, owner root, group root)" in out, out
    # The kernel agrees: the child that became www-data got EACCES.
    assert "connect() as www-data failed (13: Permission denied)" in out, out
    assert "first failing step: path" in out


def test_a_socket_of_the_wrong_group(start, workdir):
    sock = f"{workdir}/http.sock"
    serve(start, sock, group=None)
    code, out = doctor("www-data", sock, *NO_NGINX)
    assert code == 1, out
    assert f"FAIL: www-data may not connect to {sock} (mode 0660, owner root, group root)" in out, out
    assert "hint: give the socket www-data's group (--socket-group, SocketGroup=)" in out, out
    assert "connect() as www-data failed (13: Permission denied)" in out, "and the kernel agrees"
    assert "first failing step: socket" in out


def test_a_missing_socket(workdir):
    sock = f"{workdir}/nothing.sock"
    code, out = doctor("www-data", sock, *NO_NGINX)
    assert code == 1, out
    assert f"FAIL: {sock} does not exist" in out, out
    assert "(2: No such file or directory)" in out


def test_nginx_in_another_mount_namespace_sees_no_socket(start, workdir):
    # nginx started with its own mount namespace and a fresh tmpfs over the socket's directory,
    # as PrivateTmp= or a container would give it: the path exists for us, not for nginx.
    run = os.path.join(workdir, "run")
    os.mkdir(run, 0o755)
    sock = f"{run}/http.sock"
    serve(start, sock)
    own_namespace = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                     f'mount -t tmpfs tmpfs {run} && exec "$0" "$@"']
    with running_nginx(workdir, sock, wrap=own_namespace) as pid:
        code, out = doctor("www-data", sock, "--nginx-pid", str(pid))
    assert code == 1, out
    assert f"FAIL: nginx {pid} sees no {sock}" in out, out
    assert "ok: connected as www-data" in out, "www-data itself can connect: only nginx cannot"
    assert "first failing step: nginx" in out


def test_a_running_nginx_in_the_same_namespace_passes(start, workdir):
    sock = f"{workdir}/http.sock"
    serve(start, sock)
    with running_nginx(workdir, sock) as pid:
        code, out = doctor("www-data", sock, "--nginx-pid", str(pid))
    assert code == 0, out
    assert "(user www-data) sees the same socket and may connect" in out, out


@pytest.mark.usefixtures("system_group")
def test_a_group_added_after_nginx_started_is_not_in_its_worker(start, workdir, system_group):
    # The socket's group gets www-data as a member only after nginx started: a fresh login of
    # www-data (what the doctor connects as) has it, the running worker does not.
    group = system_group("pfdoctor")
    sock = f"{workdir}/http.sock"
    serve(start, sock, group)
    with running_nginx(workdir, sock) as pid:
        subprocess.run(["gpasswd", "-a", "www-data", group], check=True, capture_output=True)
        try:
            code, out = doctor("www-data", sock, "--nginx-pid", str(pid))
        finally:
            subprocess.run(["gpasswd", "-d", "www-data", group], check=True, capture_output=True)
    assert code == 1, out
    assert "ok: connected as www-data" in out, out
    assert f"is not in group {group} of {sock}: a group added after nginx started" in out, out
