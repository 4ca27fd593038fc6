"""The PROXY protocol from the real HAProxy (Debian's 2.6, running as user haproxy), believed only
from the peers --proxy-protocol names by the kernel's credentials; per-user connection quotas
with real users (runuser); the overflow uid refused. Every client that is not HAProxy runs as a
real user too, so the kernel's SO_PEERCRED is what decides, as in production."""

import json
import os
import shutil
import socket
import subprocess
import textwrap

import pytest

from conftest import BINARY, metrics, wait_until
from nginx import free_port

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None,
                                reason="haproxy is not installed (scripts/install-deps --test)")

CLIENT = "127.0.0.3"  # the address HAProxy sees the client at, and printerfacts must log


DEPLOY = os.path.join(os.path.dirname(__file__), "..", "..", "deploy")


def wait_listening(port, what):
    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_until(up, what, timeout=10)


@pytest.fixture
def haproxy(workdir):
    """The shipped deploy/haproxy/printerfacts.cfg, run by the real HAProxy (as root, dropping to
    user haproxy as it says) in front of `sock`, with `send` (send-proxy-v2, as shipped, or
    send-proxy); returns its port."""
    procs = []

    def _start(sock, send):
        port = free_port()
        text = open(os.path.join(DEPLOY, "haproxy", "printerfacts.cfg")).read()
        text = (text.replace("/run/printerfacts/http.sock", sock)
                    .replace("bind :80", f"bind 127.0.0.1:{port}")
                    .replace("send-proxy-v2", send)
                    .replace("    log /dev/log local0\n", ""))
        cfg = os.path.join(workdir, f"haproxy-{send}.cfg")
        with open(cfg, "w") as f:
            f.write(text)
        check = subprocess.run(["haproxy", "-c", "-q", "-f", cfg], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        p = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(workdir, "haproxy.log"), "wb"))
        procs.append(p)
        wait_listening(port, "haproxy listening")
        return port

    yield _start
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def through(port, n=1, keep_alive=False):
    """`n` GET /fact through HAProxy from CLIENT; the statuses."""
    statuses = []
    s = None
    for i in range(n):
        if s is None:
            s = socket.socket()
            s.bind((CLIENT, 0))
            s.connect(("127.0.0.1", port))
        last = not keep_alive or i == n - 1
        s.sendall(b"GET /fact HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.66\r\n" +
                  (b"Connection: close\r\n" if last else b"") + b"\r\n")
        data = b""
        while b"\r\n\r\n" not in data or (last and (chunk := s.recv(65536))):
            if b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
            data += chunk
            if not last and b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0]
                             .split(b":")[1])
                while len(body) < length:
                    body += s.recv(65536)
                break
        statuses.append(int(data.split(b" ")[1]) if data else 0)
        if last:
            s.close()
            s = None
    return statuses


def access_log(server, count):
    """The first `count` access log records, once the log's own thread has written them."""
    lines = lambda: [l for l in server.stdout().splitlines() if l.startswith("{")]
    wait_until(lambda: len(lines()) >= count, f"{count} access log lines", timeout=10)
    return [json.loads(l) for l in lines()]


def as_user(user, code, timeout=30):
    """Runs python `code` as `user` (runuser): its connections carry that user's credentials."""
    return subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-c", code],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("send", ["send-proxy-v2", "send-proxy"])
def test_haproxy_names_the_client_and_only_it_is_believed(start, workdir, haproxy, send):
    sock, mon = os.path.join(workdir, "pf.sock"), os.path.join(workdir, "m.sock")
    server = start("--listen", f"unix:{sock}", "--socket-group", "haproxy",
                   "--metrics-listen", f"unix:{mon}", "--proxy-protocol", "uid:haproxy",
                   "--trust-forwarded", "uid:haproxy", "--log-format", "json")
    port = haproxy(sock, send)
    assert through(port, 3, keep_alive=True) == [200, 200, 200]
    assert through(port) == [200]
    records = access_log(server, 4)
    assert len(records) == 4, records
    for r in records:
        # The client HAProxy saw, from its PROXY header: not the X-Forwarded-For the client
        # itself wrote, although HAProxy's uid is trusted for that header too.
        assert r["client.address"] == CLIENT, r
        assert ",uid=%d," % int(subprocess.check_output(["id", "-u", "haproxy"])) in r["peer"], r
    refused = {k: v for k, v in metrics(mon).items()
               if k.startswith("printerfacts_connections_refused_total") and "proxy" in k}
    assert set(refused.values()) == {0}, refused


def test_nginx_stream_names_the_client(start, workdir):
    """The shipped deploy/nginx/printerfacts-stream.conf, run by the real nginx (its stream
    module, workers as www-data), in front of printerfacts."""
    sock = os.path.join(workdir, "pf.sock")
    server = start("--listen", f"unix:{sock}", "--socket-group", "www-data",
                   "--proxy-protocol", "uid:www-data", "--log-format", "json")
    port = free_port()
    text = open(os.path.join(DEPLOY, "nginx", "printerfacts-stream.conf")).read()
    text = (text.replace("/run/printerfacts/http.sock", sock)
                .replace("listen 8080;", f"listen 127.0.0.1:{port};")
                .replace("listen [::]:8080;", ""))
    with open(os.path.join(workdir, "stream.conf"), "w") as f:
        f.write(text)
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
user www-data;
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx.error.log;
events {{ worker_connections 64; }}
include {workdir}/stream.conf;
""")
    nginx = subprocess.Popen(["nginx", "-c", conf, "-e", f"{workdir}/nginx.error.log"])
    try:
        wait_listening(port, "nginx's stream listener")
        assert through(port, 2, keep_alive=True) == [200, 200]
        records = access_log(server, 2)
        assert len(records) == 2 and all(r["client.address"] == CLIENT for r in records), records
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)


def test_a_proxy_header_from_any_other_peer_is_not_believed(start, workdir):
    sock, mon = os.path.join(workdir, "pf.sock"), os.path.join(workdir, "m.sock")
    server = start("--listen", f"unix:{sock}", "--socket-mode", "0666", "--allow-world",
                   "--metrics-listen", f"unix:{mon}", "--proxy-protocol", "uid:haproxy",
                   "--log-format", "json")
    send = textwrap.dedent(f"""\
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.connect({sock!r})
        s.sendall(b"PROXY TCP4 198.51.100.7 192.0.2.2 5555 443\\r\\nGET /fact HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        print(s.recv(65536).split(b"\\r\\n")[0].decode())
        """)
    for user in ("root", "nobody"):
        out = as_user(user, send)
        assert out.stdout.strip() == "HTTP/1.1 400 Bad Request", (user, out.stdout, out.stderr)
    records = access_log(server, 2)
    assert len(records) == 2
    assert all("client.address" not in r and r["http.response.status_code"] == 400 for r in records), records
    assert "198.51.100.7" not in server.stdout() + server.stderr()


# What a peer that must send a header may send instead: each closed unanswered, at once or at
# --header-timeout, and counted by reason; the server goes on serving.
BAD_HEADERS = [
    ("plain HTTP", b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n", "proxy_missing"),
    ("v1 too few fields", b"PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n", "proxy_malformed"),
    ("v1 wrong family", b"PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n", "proxy_malformed"),
    ("v1 port out of range", b"PROXY TCP4 192.0.2.1 192.0.2.2 99999 2\r\n", "proxy_malformed"),
    ("v1 bare LF", b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n", "proxy_malformed"),
    ("v1 without end", b"PROXY TCP4 " + b"1" * 200, "proxy_oversized"),
    ("v2 version 1", b"\r\n\r\n\x00\r\nQUIT\n\x11\x11\x00\x0c" + b"\x00" * 12, "proxy_malformed"),
    ("v2 family 4", b"\r\n\r\n\x00\r\nQUIT\n\x21\x41\x00\x0c" + b"\x00" * 12, "proxy_malformed"),
    ("v2 shorter than its addresses", b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04" + b"\x00" * 4,
     "proxy_malformed"),
    ("v2 65 KiB", b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff" + b"\x00" * 64, "proxy_oversized"),
    ("v2 cut short, then closed", b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x00", "proxy_truncated"),
    ("v1 cut short, then silent", b"PROXY TCP4 192.0.2.1", "proxy_truncated"),
]


def test_a_proxy_peer_without_a_valid_header_is_not_served(start, workdir):
    sock, mon = os.path.join(workdir, "pf.sock"), os.path.join(workdir, "m.sock")
    server = start("--listen", f"unix:{sock}", "--socket-group", "haproxy",
                   "--metrics-listen", f"unix:{mon}", "--proxy-protocol", "uid:haproxy",
                   "--header-timeout", "1s")
    cases = [(name, data, reason) for name, data, reason in BAD_HEADERS]
    code = textwrap.dedent(f"""\
        import socket, sys, time
        cases = {[(n, d) for n, d, _ in cases]!r}
        for name, data in cases:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect({sock!r})
            s.sendall(data)
            if "then closed" in name:
                s.shutdown(socket.SHUT_WR)
            began = time.monotonic()
            try:
                got = s.recv(65536)
            except ConnectionResetError:
                got = b""
            print(name, "|", len(got), "|", round(time.monotonic() - began, 1))
        """)
    out = as_user("haproxy", code)
    assert out.returncode == 0, out.stderr
    lines = [l.split(" | ") for l in out.stdout.strip().splitlines()]
    assert len(lines) == len(cases), out.stdout
    for (name, answered, took), (_, _, reason) in zip(lines, cases):
        assert answered == "0", f"{name}: answered"
        # Closed at once, or (cut short and silent) at the 1 s --header-timeout: never a hang.
        # Bounds with room for a loaded machine; the times are in the output.
        assert float(took) < (8 if "silent" in name else 5), f"{name}: took {took}s"
    wait_until(lambda: sum(v for k, v in metrics(mon).items()
                           if k.startswith("printerfacts_connections_refused_total") and "proxy" in k)
               == len(cases), "every refusal counted", timeout=5)
    counted = metrics(mon)
    for reason in {r for _, _, r in cases}:
        expected = sum(1 for _, _, r in cases if r == reason)
        key = f'printerfacts_connections_refused_total{{listener="unix:{sock}",reason="{reason}"}}'
        assert counted[key] == expected, (reason, counted[key])
    assert "its PROXY protocol header is proxy_" in server.stderr()
    # Still serving: a good header is believed.
    good = as_user("haproxy", textwrap.dedent(f"""\
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.connect({sock!r})
        s.sendall(b"PROXY TCP6 2001:db8::7 2001:db8::1 1 2\\r\\nGET /fact HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        print(s.recv(65536).split(b"\\r\\n")[0].decode())
        """))
    assert good.stdout.strip() == "HTTP/1.1 200 OK", good.stderr
    wait_until(lambda: "client=2001:db8::7" in server.stdout(), "the client logged", timeout=5)


def test_one_user_cannot_take_every_connection(start, workdir):
    sock, mon = os.path.join(workdir, "pf.sock"), os.path.join(workdir, "m.sock")
    start("--listen", f"unix:{sock}", "--socket-mode", "0666", "--allow-world",
          "--metrics-listen", f"unix:{mon}", "--max-connections-per-uid", "3", "--threads", "2")
    hold = textwrap.dedent(f"""\
        import socket, sys, time
        held = []
        for i in range(int(sys.argv[1])):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(5)
            s.connect({sock!r})
            held.append(s)
        time.sleep(0.5)
        served = 0
        for s in held:
            try:
                s.sendall(b"GET /fact HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
                served += s.recv(65536).startswith(b"HTTP/1.1 200")
            except OSError:
                pass
        print(served)
        sys.stdout.flush()
        time.sleep(float(sys.argv[2]))
        """)

    def as_user_holding(user, n, linger=0):
        return subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-c", hold, str(n),
                               str(linger)], capture_output=True, text=True, timeout=30)
    # nobody opens 5 and keeps them: 3 are served, 2 closed at once.
    holder = subprocess.Popen(["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", hold, "5",
                               "4"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "3"
        # Meanwhile another user is unaffected: it has its own 3, all served.
        other = as_user_holding("www-data", 3)
        assert other.stdout.strip() == "3", other.stderr
    finally:
        holder.wait(timeout=30)
    key = f'printerfacts_connections_refused_total{{listener="unix:{sock}",reason="uid_quota"}}'
    assert metrics(mon)[key] == 2
    # Its connections closed, the user may connect again.
    again = as_user_holding("nobody", 3)
    assert again.stdout.strip() == "3"


@pytest.mark.parametrize("flags", [["--allow-uid", "nobody"], ["--allow-gid", "65534"],
                                   ["--trust-forwarded", "uid:65534"],
                                   ["--proxy-protocol", "gid:nogroup"]])
def test_the_overflow_id_is_refused_at_start(workdir, flags):
    out = subprocess.run([BINARY, "--listen", f"unix:{workdir}/pf.sock", *flags],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 78, out.stderr
    assert "is the kernel's overflow" in out.stderr and flags[1].split(":")[-1] in out.stderr, out.stderr
    assert flags[0] in out.stderr, out.stderr
    assert not os.path.exists(f"{workdir}/pf.sock")


def test_proxy_senders_are_reloadable(start, workdir):
    """--proxy-protocol is read again on SIGHUP: from the next connection on, root's header is
    required and believed; before, it was a malformed request."""
    sock = os.path.join(workdir, "pf.sock")
    config = os.path.join(workdir, "pf.toml")
    with open(config, "w") as f:
        f.write("")
    server = start("--listen", f"unix:{sock}", "--config", config)
    send = textwrap.dedent(f"""\
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.connect({sock!r})
        s.sendall(b"PROXY TCP4 198.51.100.9 192.0.2.2 5555 443\\r\\nGET /fact HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        print(s.recv(65536).split(b"\\r\\n")[0].decode())
        """)
    assert as_user("root", send).stdout.strip() == "HTTP/1.1 400 Bad Request"
    with open(config, "w") as f:
        f.write('proxy-protocol = ["uid:root"]\n')
    server.signal(__import__("signal").SIGHUP)
    wait_until(lambda: "reloaded:" in server.stderr(), "the reload", timeout=10)
    assert as_user("root", send).stdout.strip() == "HTTP/1.1 200 OK"
    wait_until(lambda: "client=198.51.100.9" in server.stdout(), "the client logged", timeout=5)
