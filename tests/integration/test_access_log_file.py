"""--access-log-file: the access log in a file, reopened on SIGUSR1, rotated by the real
logrotate with the shipped snippet (deploy/logrotate/printerfacts) under load: no line lost,
none cut."""

import gzip
import os
import re
import shutil
import subprocess
import threading

import pytest

from conftest import Server, unix_connect, wait_until

SNIPPET = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "logrotate", "printerfacts")
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


def test_logfmt_lines_parse_as_key_value_pairs(start, workdir):
    log = os.path.join(workdir, "access.logfmt")
    server = start("--listen", "unix:./pf.sock", "--access-log-format", "logfmt", "--access-log-file", log)
    subprocess.run(["curl", "-sS", "-o", "/dev/null", "--unix-socket", os.path.join(workdir, "pf.sock"),
                    "-A", 'tool "x"=1', "-e", "https://example.org/", "http://printerfacts.example/fact?q=a%20b"],
                   check=True)
    assert server.stop() == 0
    (line,) = read_lines(log)
    pairs = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line))
    unquote = lambda v: __import__("json").loads(v) if v.startswith('"') else v
    fields = {k: unquote(v) for k, v in pairs.items()}
    assert fields["method"] == "GET" and fields["status"] == "200", fields
    assert fields["target"] == "/fact?q=a%20b" and fields["host"] == "printerfacts.example", fields
    assert fields["user_agent"] == 'tool "x"=1' and fields["referer"] == "https://example.org/", fields
    assert fields["peer"].startswith("unix:pid="), fields
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["time"]), fields
