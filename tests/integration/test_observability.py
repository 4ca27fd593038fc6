"""Logs an operator can use, metrics where they belong, and who may connect."""

import json
import os
import re
import subprocess

from conftest import BINARY, Server, curl, exchange, unix_connect, wait_until


def test_json_logs_parse_and_carry_every_field(start, workdir):
    server = start("--listen", "unix:./pf.sock", "--log-format", "json")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    exchange(s, b'GET /fact?q=%22x%22 HTTP/1.1\r\nHost: x\r\nUser-Agent: probe/1 "q"\r\n'
                b'Referer: https://example.org/\r\n\r\n')
    s.sendall(b'GET /\x01"weird HTTP/1.1\r\nHost: x\r\n\r\n')
    s.recv(65536)
    s.close()
    server.stop()
    lines = [json.loads(l) for l in server.stdout().splitlines()]
    # OpenTelemetry's HTTP semantic-convention names where there is one; ours for the rest.
    assert lines[0]["url.path"] == "/fact" and lines[0]["url.query"] == "q=%22x%22"
    assert lines[0]["http.request.method"] == "GET" and lines[0]["network.protocol.version"] == "1.1"
    assert lines[0]["http.response.status_code"] == 200 and lines[0]["http.response.size"] > 0
    assert lines[0]["peer"] == f"unix:pid={os.getpid()},uid={os.getuid()},gid={os.getgid()}"
    assert lines[0]["server.address"] == "x" and lines[0]["user_agent.original"] == 'probe/1 "q"'
    assert lines[0]["http.request.header.referer"] == ["https://example.org/"]
    assert set(lines[0]) == {"time", "peer", "request_id", "http.request.method", "url.path", "url.query",
                             "network.protocol.version", "http.response.status_code",
                             "http.response.size", "duration_ms", "server.address", "user_agent.original",
                             "http.request.header.referer"}
    assert re.fullmatch(r"[0-9a-f]{32}", lines[0]["request_id"])
    for line in server.stderr().splitlines():
        record = json.loads(line)
        assert {"time", "level", "message"} <= set(record)


def test_no_duplicate_timestamps_when_stdout_is_the_journal(workdir):
    # systemd sets JOURNAL_STREAM to the device:inode of the stream it connected; here the
    # "journal" is a file whose identity we pass the same way.
    out_path = os.path.join(workdir, "journal.log")
    with open(out_path, "wb") as out:
        st = os.fstat(out.fileno())
        env = {"PATH": "/usr/bin:/bin", "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        proc = subprocess.Popen([BINARY, "--listen", "unix:./pf.sock"], cwd=workdir, env=env,
                                stdout=out, stderr=subprocess.PIPE)
        try:
            import time
            # The socket file appears before listen(): a first connect may be refused, so curl
            # retries (no sleep to guess when the server is ready).
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(workdir, "pf.sock")) and time.monotonic() < deadline:
                time.sleep(0.02)
            curl("--retry", "50", "--retry-connrefused", "--retry-delay", "0", "--unix-socket", os.path.join(workdir, "pf.sock"), "http://x/fact")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    line = open(out_path).read().splitlines()[0]
    assert line.startswith("unix:pid="), line
    # stderr was a pipe, not the journal: diagnostics keep their timestamps.
    assert re.match(r"^\d{4}-\d\d-\d\dT", proc.stderr.read().decode())


def test_diagnostics_to_the_journal_carry_their_priority(workdir):
    """With stderr connected to the journal, each line begins with sd-daemon(3)'s "<N>", so
    that journalctl -p err finds errors (test_systemd shows it in the real journal)."""
    err_path = os.path.join(workdir, "journal.log")
    with open(err_path, "wb") as err:
        st = os.fstat(err.fileno())
        env = {"PATH": "/usr/bin:/bin", "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        r = subprocess.run([BINARY, "--listen", "unix:/nonexistent/pf.sock"], cwd=workdir, env=env,
                           stdout=subprocess.DEVNULL, stderr=err, timeout=30)
    assert r.returncode == 66
    lines = open(err_path).read().splitlines()
    assert any(l.startswith("<3>error: cannot create the socket /nonexistent/pf.sock") for l in lines), lines
    assert all(re.match(r"<[2-7]>", l) for l in lines), lines


def test_metrics_on_main_is_opt_in(start, workdir):
    start("--listen", "unix:./a.sock", "--metrics-on-main")
    r = curl("--unix-socket", os.path.join(workdir, "a.sock"), "http://x/metrics")
    # The build, by version and commit: two builds can be told apart.
    assert re.search(r'printerfacts_build_info\{commit="([0-9a-f]{12}(-dirty)?|unknown)",'
                     r'version="\d+\.\d+\.\d+"\} 1', r.stdout), r.stdout


def test_metrics_count_requests_by_route_and_status(start, workdir):
    server = start("--listen", "unix:./a.sock", "--metrics-listen", "unix:./m.sock")
    sock = os.path.join(workdir, "a.sock")
    for _ in range(3):
        curl("--unix-socket", sock, "http://x/fact")
    curl("--unix-socket", sock, "http://x/missing", check=False)
    curl("-X", "POST", "--unix-socket", sock, "http://x/fact", check=False)
    text = curl("--unix-socket", os.path.join(workdir, "m.sock"), "http://x/metrics").stdout
    assert 'printerfacts_http_requests_total{code="200",method="GET",route="fact"} 3' in text
    assert 'printerfacts_http_requests_total{code="404",method="GET",route="not_found"} 1' in text
    assert 'printerfacts_http_requests_total{code="405",method="other",route="fact"} 1' in text
    assert 'printerfacts_http_request_duration_seconds_count{route="fact"} 4' in text  # 3 GET + 1 POST
    assert 'printerfacts_connections_accepted_total{listener="unix:./a.sock"} 5' in text


def test_allow_uid_closes_other_peers_unread_and_counts_them(start, workdir):
    server = start("--listen", "unix:./a.sock", "--socket-mode", "0666", "--allow-world", "--allow-uid", "root",
                   "--metrics-listen", "unix:./m.sock")
    sock = os.path.join(workdir, "a.sock")
    assert curl("--unix-socket", sock, "http://x/healthz").stdout == "ok\n"
    r = curl("--unix-socket", sock, "http://x/healthz", check=False, prefix=["runuser", "-u", "nobody", "--"])
    assert r.returncode != 0 and r.stdout == ""
    # Diagnostics have a writer thread of their own: the line follows a moment later.
    wait_until(lambda: "peer credentials not allowed" in server.stderr(), "the refusal said")
    text = curl("--unix-socket", os.path.join(workdir, "m.sock"), "http://x/metrics").stdout
    assert 'printerfacts_peer_credential_rejections_total{listener="unix:./a.sock"} 1' in text


def test_allow_gid_admits_members_of_the_group(start, workdir):
    # www-data's primary group (nogroup, the overflow gid, is refused: test_proxy_protocol).
    start("--listen", "unix:./a.sock", "--socket-mode", "0666", "--allow-world", "--allow-gid", "www-data")
    sock = os.path.join(workdir, "a.sock")
    r = curl("--unix-socket", sock, "http://x/healthz", check=False, prefix=["runuser", "-u", "www-data", "--"])
    assert r.stdout == "ok\n", r.stderr
    r = curl("--unix-socket", sock, "http://x/healthz", check=False)  # root: gid 0, not allowed
    assert r.returncode != 0


def test_stale_socket_removal_is_counted(start, workdir):
    import socket
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(os.path.join(workdir, "a.sock"))
    stale.close()
    start("--listen", "unix:./a.sock", "--metrics-listen", "unix:./m.sock")
    text = curl("--unix-socket", os.path.join(workdir, "m.sock"), "http://x/metrics").stdout
    assert "printerfacts_stale_sockets_removed_total 1" in text


def test_listen_queue_gauges_read_from_the_kernel(start, workdir):
    server = start("--listen", "unix:./pf.sock", "--backlog", "37", "--metrics-listen", "unix:./m.sock")
    text = curl("--unix-socket", os.path.join(workdir, "m.sock"), "http://x/metrics").stdout
    assert 'printerfacts_listen_queue_backlog{listener="unix:./pf.sock"} 37' in text, text
    assert 'printerfacts_listen_queue_pending{listener="unix:./pf.sock"} 0' in text
    # The metrics listener's own queue is there too (its default backlog, capped by somaxconn).
    assert re.search(r'printerfacts_listen_queue_backlog\{listener="unix:./m.sock"\} \d+', text)
    server.stop()
