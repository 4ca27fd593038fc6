"""--access-log-file: the access log in a file, reopened on SIGUSR1, rotated by the real
logrotate with the shipped snippet (deploy/logrotate/printerfacts) under load: no line lost,
none cut."""

import gzip
import json
import os
import re
import shutil
import subprocess
import threading

import pytest

from conftest import Server, recv_until_closed, unix_connect, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SNIPPET = os.path.join(ROOT, "deploy", "logrotate", "printerfacts")
LINE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z unix:pid=\d+,uid=\d+,gid=\d+ "GET /fact HTTP/1\.1" '
                  r'200 \d+ [\d.]+ms rid=[0-9a-f]{32}$')


def served(sock, stop, counts, lock):
    while not stop.is_set():
        with unix_connect(sock) as s:
            s.sendall(b"GET /fact HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        with lock:
            counts["ok" if data.startswith(b"HTTP/1.1 200 ") else "other"] += 1


def read_lines(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        text = f.read()
    assert text == "" or text.endswith("\n"), f"{path} ends in a cut line"
    return text.splitlines()


@pytest.mark.skipif(shutil.which("logrotate") is None,
                    reason="logrotate is not installed (scripts/install-deps --test)")
def test_logrotate_under_load_loses_no_line(start, workdir):
    sock = os.path.join(workdir, "pf.sock")
    logs = os.path.join(workdir, "logs")
    os.makedirs(logs)
    log = os.path.join(logs, "access.log")
    server = start("--listen", f"unix:{sock}", "--access-log-file", log, "--threads", "2")
    # The shipped snippet, at the test's file, signalling this process as systemctl kill would.
    text = open(SNIPPET).read().replace("/var/log/printerfacts/access.log", log)
    text = re.sub(r"systemctl kill [^\n]*", f"kill -USR1 {server.proc.pid}", text)
    conf = os.path.join(workdir, "logrotate.conf")
    with open(conf, "w") as f:
        f.write(text)
    stop, lock, counts = threading.Event(), threading.Lock(), {"ok": 0, "other": 0}
    clients = [threading.Thread(target=served, args=(sock, stop, counts, lock)) for _ in range(3)]
    for c in clients:
        c.start()
    try:
        for rotation in range(3):
            wait_until(lambda: os.path.exists(log) and os.path.getsize(log) > 20000,
                       "lines in the log to rotate", timeout=30)
            r = subprocess.run(["logrotate", "-f", "-s", os.path.join(workdir, "state"), conf],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            wait_until(lambda: server.stderr().count("received SIGUSR1: reopened") == rotation + 1,
                       "the reopen", timeout=10)
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=30)
    assert server.stop() == 0  # the log is drained at exit
    files = sorted(os.listdir(logs))
    assert files == ["access.log", "access.log.1", "access.log.2.gz", "access.log.3.gz"], files
    lines = [l for name in files for l in read_lines(os.path.join(logs, name))]
    print(f"logrotate x3 under load: {counts['ok']} requests served, {len(lines)} lines in {files}")
    assert counts["other"] == 0
    assert len(lines) == counts["ok"], "every request has its line, in one of the files"
    bad = [l for l in lines if not LINE.match(l)]
    assert bad == [], bad[:3]
    assert len(set(l.rsplit("rid=", 1)[1] for l in lines)) == len(lines), "no line twice"


def test_an_access_log_file_that_cannot_be_opened_stops_the_start(workdir):
    s = Server(workdir, ["--listen", "unix:./pf.sock", "--access-log-file", "/nonexistent/access.log"],
               wait=False)
    assert s.proc.wait(timeout=30) == 73
    assert ("cannot open the access log file /nonexistent/access.log: No such file or directory; "
            "create its directory") in s.stderr()
    assert not os.path.exists(os.path.join(workdir, "pf.sock"))
    s.kill()


def test_sigusr1_without_a_file_only_says_so(start, workdir):
    s = start("--listen", "unix:./pf.sock")
    s.signal(__import__("signal").SIGUSR1)
    wait_until(lambda: "received SIGUSR1: no --access-log-file to reopen" in s.stderr(), "the notice")
    assert s.proc.poll() is None


def goaccess(log, *flags):
    """GoAccess's own count of a combined log: (total, valid, failed) requests."""
    report = log + ".json"
    r = subprocess.run(["goaccess", log, "--log-format=COMBINED", *flags, "-o", report],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    general = __import__("json").load(open(report))["general"]
    return general["total_requests"], general["valid_requests"], general["failed_requests"]


@pytest.mark.skipif(shutil.which("goaccess") is None,
                    reason="goaccess is not installed (scripts/install-deps --test)")
def test_goaccess_reads_every_line_of_the_combined_log(start, workdir):
    log = os.path.join(workdir, "combined.log")
    server = start("--listen", "tcp:127.0.0.1:0", "--listen", "unix:./pf.sock",
                   "--access-log-format", "combined", "--access-log-file", log)
    port = server.tcp_port()
    sent = 0
    for agent, referer in [("curl/8.0", ""), ('agent with "quotes"', "https://example.org/a b"),
                           ("Mozilla/5.0 (X11; Linux x86_64)", "https://example.org/")]:
        args = ["curl", "-sS", "-o", "/dev/null", "-A", agent]
        if referer:
            args += ["-e", referer]
        for target in ["/fact", "/", "/nowhere"]:
            subprocess.run(args + [f"http://127.0.0.1:{port}{target}"], check=True)
            sent += 1
    assert server.stop() == 0
    lines = read_lines(log)
    assert len(lines) == sent, lines
    # Every line valid, and GoAccess reads the client as the host (127.0.0.1 over TCP).
    assert goaccess(log) == (sent, sent, 0), lines
    # A Unix-socket peer has no address: "-" is the host, which GoAccess takes only without its
    # IP check (what the docs say to pass).
    server = start("--listen", "unix:./pf2.sock", "--access-log-format", "combined",
                   "--access-log-file", log + ".unix")
    subprocess.run(["curl", "-sS", "-o", "/dev/null", "--unix-socket", os.path.join(workdir, "pf2.sock"),
                    "http://x/fact"], check=True)
    assert server.stop() == 0
    assert goaccess(log + ".unix", "--no-ip-validation") == (1, 1, 0)


@pytest.fixture(scope="module")
def logfmt_reference(tmp_path_factory):
    """go-logfmt's decoder (logfmt_reference.go), built with Debian's Go and package."""
    out = str(tmp_path_factory.mktemp("logfmt") / "logfmt-reference")
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode",
               GOCACHE=os.path.join(ROOT, "build", "go-cache"))
    r = subprocess.run(["go", "build", "-o", out, os.path.join(HERE, "logfmt_reference.go")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return out


def test_logfmt_lines_decode_with_go_logfmt_to_what_the_client_sent(start, workdir, logfmt_reference):
    """Each line decoded by a logfmt implementation we did not write, with values that need
    quoting and escaping: what it reads back is what the client sent."""
    log = os.path.join(workdir, "access.logfmt")
    sock = os.path.join(workdir, "pf.sock")
    server = start("--listen", "unix:./pf.sock", "--access-log-format", "logfmt", "--access-log-file", log)
    # User-Agent values that need quoting and escaping. Every byte that is not printable ASCII
    # is written as \\u00XX (docs/observability.md), so a decoder reads each byte back as the code
    # point of the same number: what it reads, encoded as Latin-1, is exactly what was sent.
    agents = [b'tool "x"=1', b"a\\b c", b"tab\there", "caf\u00e9 \u2603".encode(), b"bad \xff byte",
              b"plain/1.0", b"k=v", b'\\"']
    for agent in agents:
        with unix_connect(sock) as s:
            s.sendall(b"GET /fact?q=a%20b&x=%22 HTTP/1.1\r\nHost: printerfacts.example:8080\r\n"
                      b"User-Agent: " + agent + b"\r\nReferer: https://example.org/?a=b c\r\n"
                      b"Connection: close\r\n\r\n")
            assert recv_until_closed(s).startswith(b"HTTP/1.1 200 ")
    assert server.stop() == 0
    with open(log, "rb") as f:
        text = f.read()
    r = subprocess.run([logfmt_reference], input=text, capture_output=True)
    assert r.returncode == 0, (r.stderr.decode(), text.decode("utf-8", "replace"))
    records = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert len(records) == len(agents), records
    # Workers write their own lines: the order in the file need not be the order of requests.
    assert sorted(r["user_agent"].encode("latin-1") for r in records) == sorted(agents), records
    for record in records:
        assert record["method"] == "GET" and record["status"] == "200", record
        assert record["target"] == "/fact?q=a%20b&x=%22", record
        assert record["host"] == "printerfacts.example:8080", record
        assert record["referer"] == "https://example.org/?a=b c", record
        assert record["proto"] == "HTTP/1.1" and record["peer"].startswith("unix:pid="), record
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"]), record
        assert re.fullmatch(r"[0-9a-f]{32}", record["request_id"]), record
        assert float(record["duration_ms"]) >= 0 and int(record["bytes"]) > 0, record
