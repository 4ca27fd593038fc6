"""Behind the real nginx with the shipped site configuration: the client nginx saw is logged,
and believed only from nginx; one request ID runs through nginx's log and printerfacts'."""

import json
import os
import re

import pwd

from conftest import curl
from nginx import Nginx

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def lines_with(text, needle):
    return [line for line in text.splitlines() if needle in line]


def test_the_client_nginx_saw_is_logged_not_what_the_client_claimed(start, workdir):
    server = start("--listen", f"unix:{workdir}/http.sock", "--socket-group", "www-data",
                   "--trust-forwarded", "uid:www-data")
    nginx = Nginx(workdir)
    try:
        # The client claims an address; nginx appends the one it saw ($proxy_add_x_forwarded_for).
        r = curl("-i", "-H", "X-Forwarded-For: 6.6.6.6", nginx.url("/fact?who"))
        assert r.stdout.startswith("HTTP/1.1 200 OK"), r.stdout
        request_id = re.search(r"^X-Request-Id: (\S+)\r$", r.stdout, re.M).group(1)
    finally:
        nginx.stop()
    server.stop()
    [line] = lines_with(server.stdout(), "/fact?who")
    assert " client=127.0.0.1 " in line, line
    assert "6.6.6.6" not in line, "the leftmost entry is the client's own claim"
    # nginx generated the ID ($request_id, 32 hex digits), sent it, and printerfacts echoed it.
    assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
    assert line.endswith(f" rid={request_id}"), line
    with open(os.path.join(workdir, "printerfacts.access.log")) as f:
        [nginx_line] = lines_with(f.read(), "/fact?who")
    assert nginx_line.endswith(f"rid={request_id}"), nginx_line


def test_json_log_has_client_request_id_and_trace_id(start, workdir):
    server = start("--listen", f"unix:{workdir}/http.sock", "--socket-group", "www-data",
                   "--trust-forwarded", "uid:www-data", "--log-format", "json")
    nginx = Nginx(workdir)
    try:
        curl("-H", f"traceparent: {TRACEPARENT}", "-H", "X-Request-ID: ignored-by-nginx",
             nginx.url("/fact?json"))
    finally:
        nginx.stop()
    server.stop()
    [record] = [r for r in map(json.loads, server.stdout().splitlines()) if r.get("url.query") == "json"]
    assert record["client.address"] == "127.0.0.1"
    assert record["user_agent.original"].startswith("curl/"), record
    assert record["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    # The shipped config sets X-Request-ID to nginx's own $request_id, whatever the client sent.
    assert re.fullmatch(r"[0-9a-f]{32}", record["request_id"]), record


def test_the_same_headers_from_another_local_user_are_not_believed(start, workdir):
    # Anyone who can connect could send X-Forwarded-For; only nginx's uid is trusted. Here the
    # socket is open to every local user, and nobody sends the headers straight to it.
    sock = f"{workdir}/http.sock"
    metrics = f"{workdir}/metrics.sock"
    server = start("--listen", f"unix:{sock}", "--socket-mode", "0666", "--allow-world",
                   "--trust-forwarded", "uid:www-data", "--metrics-listen", f"unix:{metrics}")
    r = curl("-i", "--unix-socket", sock, "-H", "X-Forwarded-For: 192.0.2.1",
             "-H", "X-Request-Id: chosen-by-nobody", "http://x/fact?direct",
             prefix=["runuser", "-u", "nobody", "--"])
    assert r.stdout.startswith("HTTP/1.1 200 OK"), r.stdout + r.stderr
    # An ID grants nothing, so anyone's valid one is kept and echoed.
    assert "\r\nX-Request-Id: chosen-by-nobody\r\n" in r.stdout
    text = curl("--unix-socket", metrics, "http://x/metrics").stdout
    assert "printerfacts_forwarded_headers_ignored_total 1" in text, text
    server.stop()
    [line] = lines_with(server.stdout(), "/fact?direct")
    assert "client=" not in line and "192.0.2.1" not in line, line
    assert f"uid={pwd.getpwnam('nobody').pw_uid}," in line
    assert line.endswith(" rid=chosen-by-nobody")



def test_tcp_peers_are_trusted_by_network(start, workdir):
    trusting = start("--listen", "tcp:127.0.0.1:0", "--trust-forwarded", "tcp:127.0.0.0/8",
                     "--client-header", "X-Real-IP")
    other = start("--listen", "tcp:127.0.0.1:0", "--trust-forwarded", "tcp:10.0.0.0/8",
                  "--client-header", "X-Real-IP")
    for server in (trusting, other):
        curl("-H", "X-Real-IP: 2001:DB8::7", f"http://127.0.0.1:{server.tcp_port()}/fact?tcp")
        server.stop()
    [line] = lines_with(trusting.stdout(), "/fact?tcp")
    assert " client=2001:db8::7 " in line, line
    [line] = lines_with(other.stdout(), "/fact?tcp")
    assert "client=" not in line, line
