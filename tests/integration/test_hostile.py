"""Malformed and hostile requests, as raw bytes over the Unix socket and over TCP, each with the
reaction RFC 9112/9110 requires: the status (None: the connection is closed without an answer)
and whether the connection must close afterwards. Where it stays open, a valid request follows
on the same connection and must get a normal answer: the framing was not desynchronised.

Cases are drawn from RFC 9112/9110 and the kinds of input the test suites of nginx, h2o, llhttp
and Envoy exercise (request smuggling, bad framing, control bytes, odd targets and versions)."""

import os
import re
import shutil
import socket
import tempfile

import pytest

from conftest import read_response

H = b"Host: x\r\n"
OK = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

CASES = [
    # name, raw request, expected status (None = closed, no answer), connection must close
    ("valid", b"GET /fact HTTP/1.1\r\n" + H + b"\r\n", 200, False),
    ("head", b"HEAD /fact HTTP/1.1\r\n" + H + b"\r\n", 200, False),
    ("http10", b"GET /fact HTTP/1.0\r\n\r\n", 200, True),
    # RFC 9110 §2.5 would have 1.2 answered as 1.1; Beast's parser refuses any minor version
    # above 1, and a clear 400 is the honest answer for a version nobody sends.
    ("http12 refused by the parser", b"GET /fact HTTP/1.2\r\n" + H + b"\r\n", 400, True),
    ("absolute-form", b"GET http://x/fact HTTP/1.1\r\n" + H + b"\r\n", 200, False),
    ("options asterisk", b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", 200, False),
    ("asterisk with GET", b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    # RFC 9110 §9.3.6 / §15.6.2: no tunnels here, so CONNECT is not implemented (501), and the
    # bytes after it would be tunnel data: the connection closes.
    ("CONNECT not implemented", b"CONNECT x:443 HTTP/1.1\r\n" + H + b"\r\n", 501, True),
    ("CONNECT on HTTP/1.0", b"CONNECT host:443 HTTP/1.0\r\n\r\n", 501, True),
    ("authority-form with GET", b"GET x:443 HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    ("relative target", b"GET fact HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    ("CL and TE together", b"POST /fact HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, True),
    ("TE not ending in chunked", b"POST /fact HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\nGET /x HTTP/1.1\r\n\r\n", 400, True),
    ("TE chunked then gzip", b"POST /fact HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400, True),
    ("TE on HTTP/1.0", b"POST /fact HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, True),
    ("duplicate CL differing", b"POST /fact HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, True),
    ("CL not a number", b"POST /fact HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n", 400, True),
    ("CL negative", b"POST /fact HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400, True),
    ("CL with plus", b"POST /fact HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", 400, True),
    ("CL overflow", b"POST /fact HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\n", 400, True),
    ("body over limit", b"POST /fact HTTP/1.1\r\n" + H + b"Content-Length: 100000\r\n\r\n", 413, True),
    ("GET with small body stays in sync", b"GET /fact HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello", 200, False),
    ("chunked body with trailer", b"POST /fact HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", 405, False),
    ("bad chunk size", b"POST /fact HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, True),
    ("chunk size overflow", b"POST /fact HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n", 400, True),
    ("chunk data without CRLF", b"POST /fact HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400, True),
    ("chunked body over limit", b"POST /fact HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n20000\r\n" + b"a" * 70000, 413, True),
    # RFC 9112 §5.2 allows either 400 or unfolding: obs-fold is refused in every field.
    ("obs-fold refused", b"GET /fact HTTP/1.1\r\n" + H + b"X-Folded: a\r\n b\r\n\r\n", 400, True),
    ("obs-fold with a tab refused", b"GET /fact HTTP/1.1\r\n" + H + b"X-Folded: a\r\n\tb\r\n\r\n", 400, True),
    # Unfolded, the final coding is "abc", not chunked: it must never be framed as chunked with
    # the request after its body answered (a smuggling path that Beast's unfolding opened).
    ("obs-fold after TE chunked", b"POST /fact HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n abc\r\n\r\n"
     b"0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    ("whitespace before the first field", b"GET /fact HTTP/1.1\r\n " + H + b"\r\n", 400, True),
    # RFC 9110 §5.3: the lines of one field are one list; the final coding is chunked.
    ("TE split over two lines", b"POST /fact HTTP/1.1\r\n" + H + b"Transfer-Encoding: deflate\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 405, False),
    ("TE chunked then another line", b"POST /fact HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
     b"Transfer-Encoding: deflate\r\n\r\n0\r\n\r\n", 400, True),
    ("TE trailer refused", b"POST /fact HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"0\r\nTransfer-Encoding: gzip\r\n\r\n", 400, True),
    ("chunk extensions", b"POST /fact HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"1;a=b;c=\"d e\"\r\nx\r\n0\r\n\r\n", 405, False),
    ("obs-fold in Host refused", b"GET /fact HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", 400, True),
    ("space before colon", b"GET /fact HTTP/1.1\r\nHost : x\r\n\r\n", 400, True),
    ("NUL in header value", b"GET /fact HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", 400, True),
    ("bare CR in header value", b"GET /fact HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400, True),
    ("control byte in header name", b"GET /fact HTTP/1.1\r\n" + H + b"X\x01A: a\r\n\r\n", 400, True),
    ("empty header name", b"GET /fact HTTP/1.1\r\n" + H + b": a\r\n\r\n", 400, True),
    ("bad method characters", b"G@T /fact HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    ("unknown method", b"BREW /fact HTTP/1.1\r\n" + H + b"\r\n", 405, False),
    ("lowercase method", b"get /fact HTTP/1.1\r\n" + H + b"\r\n", 405, False),
    ("lowercase version", b"GET /fact http/1.1\r\n" + H + b"\r\n", 400, True),
    ("HTTP/0.9", b"GET /fact\r\n\r\n", 400, True),
    # Beast's parser refuses any version but HTTP/1.0 and 1.1 before the router could say 505.
    ("HTTP/2.0 over text", b"GET /fact HTTP/2.0\r\n" + H + b"\r\n", 400, True),
    ("h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, True),
    ("HTTP/3.0", b"GET /fact HTTP/3.0\r\n" + H + b"\r\n", 400, True),
    ("missing Host", b"GET /fact HTTP/1.1\r\n\r\n", 400, True),
    ("duplicate Host", b"GET /fact HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, True),
    ("Host with userinfo", b"GET /fact HTTP/1.1\r\nHost: u@x\r\n\r\n", 400, True),
    ("Host with space", b"GET /fact HTTP/1.1\r\nHost: a b\r\n\r\n", 400, True),
    ("Host with port", b"GET /fact HTTP/1.1\r\nHost: x:8080\r\n\r\n", 200, False),
    # RFC 3986 §3.2.2: a reg-name may begin like an IPv4 address (Boost.URL 1.81 refuses it).
    ("Host reg-name like an address", b"GET /fact HTTP/1.1\r\nHost: 0.0.0.0=5000\r\n\r\n", 200, False),
    ("Host IPv6 literal", b"GET /fact HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 200, False),
    ("Host bad port", b"GET /fact HTTP/1.1\r\nHost: x:80a\r\n\r\n", 400, True),
    ("overlong request line", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414, True),
    ("overlong header", b"GET /fact HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, True),
    ("too many headers", b"GET /fact HTTP/1.1\r\n" + H + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n", 431, True),
    ("unknown expectation", b"GET /fact HTTP/1.1\r\n" + H + b"Expect: teapot\r\n\r\n", 417, True),
    ("raw non-ASCII in target", b"GET /caf\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    ("encoded NUL in path", b"GET /%00 HTTP/1.1\r\n" + H + b"\r\n", 404, False),
    ("encoded CRLF in path", b"GET /%0d%0aSet-Cookie:%20x HTTP/1.1\r\n" + H + b"\r\n", 404, False),
    ("bad percent-encoding", b"GET /%zz HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    ("Connection: close honoured", b"GET /fact HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", 200, True),
    ("Upgrade ignored", b"GET /fact HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 200, False),
    ("leading empty line tolerated", b"\r\nGET /fact HTTP/1.1\r\n" + H + b"\r\n", 200, False),
]


def transports(workdir, server):
    return {"unix": lambda: _unix(os.path.join(workdir, "pf.sock")),
            "tcp": lambda: socket.create_connection(("127.0.0.1", server.tcp_port()), timeout=10)}


def _unix(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    return s


def read_all_after(sock, rest):
    data = rest
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except socket.timeout:
        return data, False


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    from conftest import Server
    # A short path of its own (a socket path has at most 107 bytes): this suite runs on each
    # event loop at the same time, and pytest numbers its temporary directories per run.
    short = tempfile.mkdtemp(prefix="pfh-", dir="/tmp")
    os.chmod(short, 0o755)
    server = Server(short, ["--listen", "unix:./pf.sock", "--listen", "tcp:127.0.0.1:0", "--max-body-size", "64k",
                            "--max-header-size", "8k", "--header-timeout", "2s"])
    yield short, server
    server.kill()
    shutil.rmtree(short, ignore_errors=True)


@pytest.mark.parametrize("transport", ["unix", "tcp"])
@pytest.mark.parametrize("name,raw,status,must_close", CASES, ids=[c[0] for c in CASES])
def test_hostile_request(hostile_server, transport, name, raw, status, must_close):
    workdir, server = hostile_server
    s = transports(workdir, server)[transport]()
    s.sendall(raw)
    if status is None:
        data, closed = read_all_after(s, b"")
        assert data == b"" and closed
        return
    got, headers, rest, line = read_response(s)
    assert got == status, (line, name)
    if must_close:
        if status >= 400 and line.startswith("HTTP/1.1"):
            assert headers.get("connection", "").lower() == "close"
        s.settimeout(3)
        data, closed = read_all_after(s, rest)
        assert closed, f"{name}: connection left open"
        assert not re.search(rb"HTTP/1\.[01] \d{3}", data[int(headers.get("content-length", 0)):]), \
            f"{name}: a second response followed: {data!r}"
    else:
        # Still in sync: the next request on this connection gets its own, normal answer.
        length = 0 if raw.startswith(b"HEAD") else int(headers.get("content-length", 0))
        while len(rest) < length:
            rest += s.recv(65536)
        s.sendall(OK)
        got2, _, body2, _ = read_response(s, rest[length:])
        assert got2 == 200, name
    s.close()


def test_case_table_is_large_enough():
    assert len(CASES) >= 40


def test_case_names_are_unique():
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))


def test_pipelined_requests_with_an_error_in_between(hostile_server):
    workdir, server = hostile_server
    s = _unix(os.path.join(workdir, "pf.sock"))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /fact HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
              b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data, closed = read_all_after(s, b"")
    statuses = [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3})", data)]
    # The error ends the connection: the request after it is never answered.
    assert statuses == [200, 400] and closed


def test_expect_100_continue_gets_an_interim_response(hostile_server):
    workdir, server = hostile_server
    s = _unix(os.path.join(workdir, "pf.sock"))
    s.sendall(b"POST /fact HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    interim = s.recv(100)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(b"hello")
    status, headers, _, _ = read_response(s)
    assert status == 405
