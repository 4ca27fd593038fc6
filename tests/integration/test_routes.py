"""Every route, over a real Unix socket, with curl and with raw bytes."""

import os
import re

from conftest import curl, exchange, read_response, recv_until_closed, unix_connect

FACTS_FILE_LINES = ["Printers purr at 40 pages per minute.", "Toner <tastes> like \"burnt\" & toast."]


def test_fact_is_plain_text_with_one_line(start, workdir):
    start("--listen", "unix:./pf.sock")
    r = curl("-i", "--unix-socket", os.path.join(workdir, "pf.sock"), "http://localhost/fact")
    head, _, body = r.stdout.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK")
    assert "Content-Type: text/plain; charset=utf-8" in head
    assert re.search(r"^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r?$", head, re.M)
    assert body.endswith("\n") and body.count("\n") == 1 and len(body) > 10


def test_facts_are_random(start, workdir):
    start("--listen", "unix:./pf.sock")
    seen = {curl("--unix-socket", os.path.join(workdir, "pf.sock"), "http://x/fact").stdout for _ in range(15)}
    assert len(seen) > 3


def test_index_page_has_fact_stylesheet_and_footer(start, workdir):
    facts = os.path.join(workdir, "facts.txt")
    with open(facts, "w") as f:
        f.write("\n".join(FACTS_FILE_LINES) + "\n")
    start("--listen", "unix:./pf.sock", "--facts-file", facts)
    r = curl("-i", "--unix-socket", os.path.join(workdir, "pf.sock"), "http://localhost/")
    assert r.stdout.startswith("HTTP/1.1 200 OK")
    assert "Content-Type: text/html; charset=utf-8" in r.stdout
    assert "<title>Printer Facts</title>" in r.stdout
    assert '<link rel="stylesheet" href="/static/style.css">' in r.stdout
    assert "<footer>" in r.stdout
    quote = re.search(r"<blockquote>(.*)</blockquote>", r.stdout).group(1)
    assert quote in ("Printers purr at 40 pages per minute.",
                     "Toner &lt;tastes&gt; like &quot;burnt&quot; &amp; toast.")


def test_facts_file_replaces_the_builtin_facts(start, workdir):
    facts = os.path.join(workdir, "facts.txt")
    with open(facts, "w") as f:
        f.write("\n".join(FACTS_FILE_LINES) + "\n")
    start("--listen", "unix:./pf.sock", "--facts-file", facts)
    for _ in range(10):
        body = curl("--unix-socket", os.path.join(workdir, "pf.sock"), "http://x/fact").stdout
        assert body.rstrip("\n") in FACTS_FILE_LINES


def test_static_stylesheet_etag_and_304(start, workdir):
    start("--listen", "unix:./pf.sock")
    sock = os.path.join(workdir, "pf.sock")
    r = curl("-i", "--unix-socket", sock, "http://localhost/static/style.css")
    assert r.stdout.startswith("HTTP/1.1 200 OK")
    assert "Content-Type: text/css; charset=utf-8" in r.stdout
    assert "Cache-Control: public, max-age=3600" in r.stdout
    etag = re.search(r"^ETag: (\S+)\r$", r.stdout, re.M).group(1)
    r = curl("-i", "--unix-socket", sock, "-H", f"If-None-Match: {etag}", "http://localhost/static/style.css")
    head, _, body = r.stdout.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 304 Not Modified")
    assert f"ETag: {etag}" in head
    assert body == ""


def test_static_dir_serves_files_and_nothing_outside(start, workdir):
    root = os.path.join(workdir, "static")
    os.mkdir(root)
    with open(os.path.join(root, "style.css"), "w") as f:
        f.write("body { color: red; }\n")
    with open(os.path.join(workdir, "secret.txt"), "w") as f:
        f.write("top secret\n")
    os.symlink(os.path.join(workdir, "secret.txt"), os.path.join(root, "link.txt"))
    os.mkfifo(os.path.join(root, "pipe.css"))
    start("--listen", "unix:./pf.sock", "--static-dir", root)
    sock = os.path.join(workdir, "pf.sock")
    assert curl("--unix-socket", sock, "http://x/static/style.css").stdout == "body { color: red; }\n"
    for path in ["/static/link.txt", "/static/..%2fsecret.txt", "/static/%2e%2e/secret.txt",
                 "/static/..%5csecret.txt", "/static/pipe.css", "/static/style.css%00"]:
        r = curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "--path-as-is", "--unix-socket", sock,
                 "http://x" + path)
        assert r.stdout == "404", path


def test_healthz(start, workdir):
    start("--listen", "unix:./pf.sock")
    assert curl("--unix-socket", os.path.join(workdir, "pf.sock"), "http://x/healthz").stdout == "ok\n"


def test_not_found_names_the_path_escaped(start, workdir):
    start("--listen", "unix:./pf.sock")
    r = curl("-i", "--unix-socket", os.path.join(workdir, "pf.sock"),
             "http://x/missing/%3Cimg%20src=x%20onerror=alert(1)%3E", check=False)
    assert r.stdout.startswith("HTTP/1.1 404 Not Found")
    assert "/missing/&lt;img src=x onerror=alert(1)&gt;" in r.stdout
    assert "<img src=x" not in r.stdout
    assert "X-Content-Type-Options: nosniff" in r.stdout
    assert "Content-Security-Policy: default-src 'none'" in r.stdout


def test_method_not_allowed_lists_allowed_methods(start, workdir):
    start("--listen", "unix:./pf.sock")
    r = curl("-i", "-X", "DELETE", "--unix-socket", os.path.join(workdir, "pf.sock"), "http://x/fact")
    assert r.stdout.startswith("HTTP/1.1 405 Method Not Allowed")
    assert "Allow: GET, HEAD" in r.stdout


def test_head_has_length_but_no_body(start, workdir):
    start("--listen", "unix:./pf.sock")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    status, headers, body, leftover = exchange(s, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", head=True)
    assert status == 200
    assert int(headers["content-length"]) > 300
    # The connection is still in sync: the next response starts right where the head ended.
    status, headers, body, _ = exchange(s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, body) == (200, b"ok\n")


def test_keep_alive_serves_many_requests_on_one_connection(start, workdir):
    server = start("--listen", "unix:./pf.sock")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    for _ in range(50):
        status, _, body, _ = exchange(s, b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 200 and body.endswith(b"\n")
    s.close()
    server.stop()
    # All 50 requests came from one connecting process over one socket.
    lines = [l for l in server.stdout().splitlines() if '"GET /fact HTTP/1.1" 200' in l]
    assert len(lines) == 50
    assert len({l.split(" ")[1] for l in lines}) == 1


def test_pipelined_requests_are_answered_in_order(start, workdir):
    start("--listen", "unix:./pf.sock")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = recv_until_closed(s)
    statuses = [int(m) for m in re.findall(rb"^HTTP/1\.1 (\d{3})", data, re.M)]
    assert statuses == [200, 404, 200, 200]
    assert data.endswith(b"ok\n")


def test_http10_gets_an_answer_and_a_close(start, workdir):
    start("--listen", "unix:./pf.sock")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    s.sendall(b"GET /fact HTTP/1.0\r\n\r\n")
    data = recv_until_closed(s)
    assert data.startswith(b"HTTP/1.0 200 OK\r\n")
    assert data.endswith(b"\n")


def test_http10_keep_alive_when_asked(start, workdir):
    start("--listen", "unix:./pf.sock")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    for _ in range(3):
        status, headers, _, _ = exchange(s, b"GET /fact HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert status == 200
        assert headers["connection"].lower() == "keep-alive"


def test_malformed_request_gets_400_and_close(start, workdir):
    start("--listen", "unix:./pf.sock")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    s.sendall(b"GET /fact HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    data = recv_until_closed(s)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close" in data


def test_missing_host_on_http11_is_400(start, workdir):
    start("--listen", "unix:./pf.sock")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    s.sendall(b"GET /fact HTTP/1.1\r\n\r\n")
    assert recv_until_closed(s).startswith(b"HTTP/1.1 400 ")


def test_oversized_headers_get_431(start, workdir):
    start("--listen", "unix:./pf.sock", "--max-header-size", "2k")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    s.sendall(b"GET /fact HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n")
    assert recv_until_closed(s).startswith(b"HTTP/1.1 431 ")


def test_body_over_the_limit_gets_413(start, workdir):
    start("--listen", "unix:./pf.sock", "--max-body-size", "1k")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    s.sendall(b"POST /fact HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)
    assert recv_until_closed(s).startswith(b"HTTP/1.1 413 ")


def test_access_log_has_peer_credentials_and_request(start, workdir):
    server = start("--listen", "unix:./pf.sock")
    s = unix_connect(os.path.join(workdir, "pf.sock"))
    exchange(s, b"GET /fact?\x22quoted HTTP/1.1\r\nHost: x\r\n\r\n".replace(b"\x22", b"%22"))
    s.close()
    server.stop()
    line = [l for l in server.stdout().splitlines() if "/fact" in l][0]
    m = re.match(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) unix:pid=(\d+),uid=(\d+),gid=(\d+) '
                 r'"GET /fact\?%22quoted HTTP/1\.1" 200 (\d+) ([\d.]+)ms rid=([0-9a-f]{32})$', line)
    assert m, line
    assert int(m.group(2)) == os.getpid()
    assert int(m.group(3)) == os.getuid()


def test_access_log_off(start, workdir):
    server = start("--listen", "unix:./pf.sock", "--access-log", "off")
    curl("--unix-socket", os.path.join(workdir, "pf.sock"), "http://x/fact")
    server.stop()
    assert server.stdout() == ""
