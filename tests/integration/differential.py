"""Differential testing of printerfacts' HTTP/1.1 parsing against independent parsers.

The same bytes go to printerfacts and to two widely deployed parsers that printerfacts shares no
code with: Node.js's http server (llhttp, llhttp_server.js beside this file) over a Unix socket,
and Python's h11, in process. For each input, each implementation's *outcome* is compared: the
requests it accepted, in order (a probe request follows every input, so where a message ends is
seen in whether the probe is then answered as a request of its own), and whether it refused what
came next. The references also report each body's length.

Inputs are mutations of valid requests over the grammar's sharp edges, drawn from a seeded
random generator: the same seed gives the same inputs.

A disagreement is either explained by a written policy (a place where printerfacts is stricter
on purpose, EXPLAINED below, or where a reference refuses what RFC 9110/9112 allows,
REFERENCE_QUIRKS) or it is a defect. Run by test_differential.py in CI (a fixed seed and count);
for a longer run:

    python3 tests/integration/differential.py --seed 7 --count 100000 [--binary build/dev/printerfacts]
"""

import argparse
import collections
import ipaddress
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import h11

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE_TARGET = "/probe"
PROBE = b"GET /probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
# printerfacts' answers that refuse a request rather than route it (each closes the connection).
REFUSALS = {400, 408, 413, 414, 417, 431, 501, 505}


# ---------------------------------------------------------------------------------------------
# Inputs


class Case:
    """A request as parts, so mutations can work on its grammar; bytes() renders it."""

    def __init__(self, method="GET", target="/a", version="HTTP/1.1", fields=None, body=b"",
                 sp1=" ", sp2=" ", eol=b"\r\n"):
        self.method, self.target, self.version = method, target, version
        self.sp1, self.sp2, self.eol = sp1, sp2, eol
        self.fields = list(fields if fields is not None else [("Host", "x")])
        self.body = body
        self.raw_edits = []  # (position fraction, bytes) inserted into the rendered head
        self.notes = []

    def head(self):
        line = f"{self.method}{self.sp1}{self.target}{self.sp2}{self.version}".encode("latin-1")
        out = line + self.eol
        for name, value in self.fields:
            out += (name + ":" + value).encode("latin-1") + self.eol
        return out + self.eol

    def bytes(self):
        head = self.head()
        for where, data in self.raw_edits:
            at = int(where * (len(head) - 4))
            head = head[:at] + data + head[at:]
        return head + self.body


def chunked(chunks, trailer=b"", last=b"0", ext=b""):
    out = b""
    for size, data in chunks:
        out += size + ext + b"\r\n" + data + b"\r\n"
    return out + last + b"\r\n" + trailer + b"\r\n"


TE_VALUES = ["chunked", "Chunked", "CHUNKED", " chunked", "chunked ", "chunked,", ",chunked",
             "identity, chunked", "gzip, chunked", "chunked, gzip", "gzip", "chunkedx", "chunk",
             "\tchunked", "chunked;q=1", "\"chunked\"", "x-chunked", ""]
CL_VALUES = ["5", "05", "+5", "-5", "5 ", " 5", "5,5", "5, 5", "5,6", "0x5", "", "1e1", "5.0",
             "99999999999999999999", "0", "4", "6", "\t5"]
CHUNK_SIZES = [b"5", b"05", b"0x5", b"5 ", b" 5", b"+5", b"-5", b"fffffffffffffffff", b"5\t",
               b"00005", b"A", b"g"]
CHUNK_EXTS = [b";a", b";a=b", b';a="x y"', b"; a", b";", b";a=", b";a b", b" ;a", b";a=\"x",
              b";a=b;c=d", b";\x01", b";a=\\x"]
TRAILERS = [b"X-T: 1\r\n", b"X-T 1\r\n", b"X-T: 1\r\n y\r\n", b": x\r\n", b"X-T:\x001\r\n",
            b"Content-Length: 5\r\n", b"Host: y\r\n"]
VERSIONS = ["HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "http/1.1", "HTTP/1.10",
            "HTTP/01.1", "HTTP/1.1 ", "HTTP/1", "HTTP/3.0", "HTTP /1.1", "HTTP/1.1\t"]
METHODS = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW", "get", "G@T", "CONNECT",
           "GET\t", "M-SEARCH", "PROPFIND", "G", "GET\x00"]
TARGETS = ["/a", "/a?b=c", "http://x/a", "*", "a", "//a", "/a#f", "/%zz", "/a%20b", "/a b",
           "/a\tb", "/a\x7fb", "/caf\xc3\xa9", "x:443", "/a?\x01", "/" + "a" * 300]
HOSTS = [None, "x", "x:80", "[::1]", "[::1]:8080", "0.0.0.0=5000", "u@x", "", "x y", "x:8o",
         "a_b", "x:", "\x01", "xn--a.b", "x,y"]
NAMES = ["X-A", "X A", "X-A ", " X-A", "X\x01A", "X\"A", "", "X(A)", "X_A", "X\x80A"]
VALUES = ["v", " v", "v ", "\tv", "v\tw", "v\x01w", "v\x7fw", "v\x80w", "", "v\rw", "v\nw",
          "v\x00w"]


def mutate(rng, case):
    """Applies one mutation from the grammar's sharp edges to `case`."""
    kind = rng.choice(["cl", "te", "te2", "cl_te", "fold", "name", "value", "raw", "chunk_size",
                       "chunk_ext", "trailer", "version", "method", "target", "host", "count",
                       "size", "spaces", "eol", "body_short", "body_long", "expect", "connection"])
    case.notes.append(kind)
    if kind == "cl":
        case.method = "POST"
        case.fields.append(("Content-Length", rng.choice(CL_VALUES)))
        case.body = b"hello"
    elif kind == "te":
        case.method = "POST"
        case.fields.append(("Transfer-Encoding", rng.choice(TE_VALUES)))
        case.body = chunked([(b"5", b"hello")])
    elif kind == "te2":
        case.method = "POST"
        case.fields.append(("Transfer-Encoding", rng.choice(TE_VALUES)))
        case.fields.append(("Transfer-Encoding", rng.choice(TE_VALUES)))
        case.body = chunked([(b"5", b"hello")])
    elif kind == "cl_te":
        case.method = "POST"
        both = [("Content-Length", rng.choice(CL_VALUES)), ("Transfer-Encoding", rng.choice(TE_VALUES))]
        rng.shuffle(both)
        case.fields += both
        case.body = chunked([(b"5", b"hello")])
    elif kind == "fold":
        if not case.fields:
            case.fields.append(("X-F", " v"))
        i = rng.randrange(len(case.fields))
        name, value = case.fields[i]
        case.fields[i] = (name, value + "\r\n" + rng.choice([" ", "\t", "  "]) + rng.choice(["abc", "", "chunked", "x"]))
    elif kind == "name":
        case.fields.insert(rng.randrange(len(case.fields) + 1), (rng.choice(NAMES), " v"))
    elif kind == "value":
        case.fields.insert(rng.randrange(len(case.fields) + 1), ("X-V", rng.choice(VALUES)))
    elif kind == "raw":
        case.raw_edits.append((rng.random(), rng.choice([b"\r", b"\n", b"\x00", b"\x01", b" ", b"\t",
                                                         b"\x7f", b"\xff", b":", b"\r\n"])))
    elif kind in ("chunk_size", "chunk_ext", "trailer"):
        case.method = "POST"
        case.fields.append(("Transfer-Encoding", "chunked"))
        size = rng.choice(CHUNK_SIZES) if kind == "chunk_size" else b"5"
        ext = rng.choice(CHUNK_EXTS) if kind == "chunk_ext" else b""
        trailer = rng.choice(TRAILERS) if kind == "trailer" else b""
        case.body = chunked([(size, b"hello")], trailer=trailer, ext=ext)
    elif kind == "version":
        case.version = rng.choice(VERSIONS)
    elif kind == "method":
        case.method = rng.choice(METHODS)
    elif kind == "target":
        case.target = rng.choice(TARGETS)
    elif kind == "host":
        case.fields = [f for f in case.fields if f[0].lower() != "host"]
        for _ in range(rng.choice([1, 1, 1, 2])):
            host = rng.choice(HOSTS)
            if host is not None:
                case.fields.insert(rng.randrange(len(case.fields) + 1), ("Host", " " + host))
    elif kind == "count":
        for i in range(rng.choice([20, 60, 99, 120])):
            case.fields.append((f"X-{i}", " 1"))
    elif kind == "size":
        case.fields.append(("X-Big", " " + "a" * rng.choice([100, 1000, 4000, 20000])))
    elif kind == "spaces":
        case.sp1, case.sp2 = rng.choice([(" ", " "), ("  ", " "), (" ", "  "), ("\t", " "), (" ", "\t")])
    elif kind == "eol":
        case.eol = rng.choice([b"\n", b"\r\n", b"\r"])
    elif kind == "body_short":
        case.method = "POST"
        case.fields.append(("Content-Length", "10"))
        case.body = b"hello"
    elif kind == "body_long":
        case.method = "POST"
        case.fields.append(("Content-Length", "3"))
        case.body = b"hello"
    elif kind == "expect":
        case.fields.append(("Expect", rng.choice([" 100-continue", " teapot", " 100-Continue", ""])))
    elif kind == "connection":
        case.fields.append(("Connection", rng.choice([" close", " keep-alive", " Close", " x, close", " upgrade"])))


def generate(seed, count):
    """`count` inputs from `seed`: each a valid request with one to three mutations, then the
    probe. Also yields a few valid pipelines, so agreement on the ordinary case is checked too."""
    rng = random.Random(seed)
    for i in range(count):
        case = Case()
        for _ in range(rng.choice([1, 1, 2, 3])):
            mutate(rng, case)
        yield "+".join(case.notes), case.bytes() + PROBE


# ---------------------------------------------------------------------------------------------
# Outcomes: ("accepted", target, body length or None) per request, then ("refused",) or ("end",)


def h11_outcome(data):
    """h11, in process: the requests it parses from `data` followed by end of input."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=8192)
    conn.receive_data(data)
    conn.receive_data(b"")
    out = []
    current = None
    length = 0
    try:
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                if event.method == b"CONNECT":
                    # No tunnels: refused, as the llhttp server and printerfacts refuse it.
                    return out + [("refused", "CONNECT")]
                current, length = event.target.decode("latin-1"), 0
            elif isinstance(event, h11.Data):
                length += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                out.append(("accepted", current, length))
                conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
                conn.send(h11.EndOfMessage())
                if conn.our_state is h11.MUST_CLOSE:
                    return out + [("end",)]
                conn.start_next_cycle()
            elif event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                return out + [("end",)]
    except h11.RemoteProtocolError as e:
        return out + [("refused", str(e))]


def _read_responses(sock):
    """The (status, headers, body) responses on `sock` until it closes."""
    data = b""
    sock.settimeout(10)
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    responses = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        if not re.match(r"HTTP/1\.[01] \d{3}", lines[0]):
            raise AssertionError(f"not an HTTP response: {data[:300]!r}")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding") == "chunked":  # node's own answers (417, ...)
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                body, rest = body + rest[:size], rest[size + 2:]
                if size == 0:
                    break
            responses.append((status, headers, body))
            data = rest
            continue
        length = int(headers.get("content-length", "0"))
        responses.append((status, headers, rest[:length]))
        data = rest[length:]
    return responses


def _exchange(path, data):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused before all was sent: what it answered is still to be read
    try:
        return _read_responses(s)
    finally:
        s.close()


def llhttp_outcome(path, data):
    out = []
    for status, _, body in _exchange(path, data):
        if status == 100:
            continue
        try:
            answer = json.loads(body)
        except ValueError:
            answer = {"error": f"{status} {body[:60]!r}"}
        if "error" in answer:
            return out + [("refused", answer["error"])]
        out.append(("accepted", answer["target"], answer["body"]))
    return out + [("end",)]


NOT_FOUND_PATH = re.compile(rb"There is no page at <code>(.*?)</code>", re.S)


def printerfacts_outcome(path, data):
    """printerfacts answers 404 to every target the generator uses but the probe's; the page
    names the (decoded) path, which tells which request each answer is for."""
    out = []
    for status, _, body in _exchange(path, data):
        if status == 100:
            continue
        if status in REFUSALS:
            return out + [("refused", status)]
        m = NOT_FOUND_PATH.search(body)
        target = m.group(1).decode("latin-1") if m else f"<{status}>"
        out.append(("accepted", target, None))
    return out + [("end",)]


# ---------------------------------------------------------------------------------------------
# Comparison


def shape(outcome):
    """What is compared: how many requests were accepted, whether the probe was among them and
    was the last, and whether the input ended in a refusal. Targets are spelled differently by
    each implementation (printerfacts decodes them; absolute-form and "*" have no path)."""
    accepted = [o for o in outcome if o[0] == "accepted"]
    probe_last = bool(accepted) and accepted[-1][1] == PROBE_TARGET
    return len(accepted), probe_last, outcome[-1][0]


def _lower_fields(raw):
    head = raw.split(b"\r\n\r\n", 1)[0]
    return [line.split(b":", 1)[0].strip().lower() for line in head.split(b"\r\n")[1:]]


def _field_values(raw, name):
    head = raw.split(b"\r\n\r\n", 1)[0]
    values = []
    for line in head.split(b"\r\n")[1:]:
        n, sep, v = line.partition(b":")
        if sep and n.lower() == name:
            values.append(v.strip(b" \t"))
    return values


def _error(outcome):
    """What the implementation said when it refused, or None when it did not."""
    return outcome[-1][1] if outcome[-1][0] == "refused" else None


def _request_line(raw):
    return raw.split(b"\r\n", 1)[0]


def _request(raw):
    """The input less the probe."""
    return raw[:-len(PROBE)]


# Where printerfacts refuses (with the status given) what a reference accepts, on purpose. Each
# entry: (reason, predicate over the input bytes and printerfacts' status). The first that holds
# explains the difference; docs/security.md lists the same policies.
def _valid_host(value):
    """RFC 3986 §3.2.2 uri-host [ ":" port ], written here apart from printerfacts' C++ check:
    an IP-literal (IPv6 by Python's ipaddress, or IPvFuture) or a reg-name."""
    m = re.fullmatch(rb"(\[[^\]]*\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(:[0-9]*)?", value)
    if not m:
        return False
    host = m.group(1)
    if host.startswith(b"["):
        inner = host[1:-1].decode("latin-1")
        if inner[:1] in ("v", "V"):
            return re.fullmatch(r"[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+", inner) is not None
        try:
            ipaddress.IPv6Address(inner)
            return "%" not in inner  # a zone identifier needs RFC 6874's encoding
        except ValueError:
            return False
    return re.search(rb"%(?![0-9A-Fa-f]{2})", host) is None


def _host_policy(raw, status):
    if status != 400:
        return False
    req = _request(raw)
    hosts = _field_values(req, b"host")
    version_11 = b"HTTP/1.1" in _request_line(req)
    return len(hosts) > 1 or (not hosts and version_11) or any(not _valid_host(h) for h in hosts)


TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
CHUNK_LINE = re.compile(rb"[0-9A-Fa-f]+(?:[ \t]*;[ \t]*" + TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + TOKEN + rb"|" + QUOTED + rb"))?)*")


def _chunk_lines(raw):
    """The chunk-size lines of a chunked request body, as far as they can be found."""
    req = _request(raw)
    head, sep, body = req.partition(b"\r\n\r\n")
    lines = []
    if not _field_values(req, b"transfer-encoding"):
        return lines
    while sep and body:
        line, sep, body = body.partition(b"\r\n")
        lines.append(line)
        m = re.match(rb"[0-9A-Fa-f]+", line)
        if not m or int(m.group(0), 16) == 0:
            break
        body = body[int(m.group(0), 16) + 2:]
    return lines


def _line_after_chunked(raw):
    """Whether a Transfer-Encoding line follows one whose last coding is chunked."""
    values = _field_values(_request(raw), b"transfer-encoding")
    for i, v in enumerate(values[:-1]):
        codings = [e.strip(b" \t").split(b";")[0].strip().lower() for e in v.split(b",") if e.strip(b" \t")]
        if codings[-1:] == [b"chunked"]:
            return True
    return False


def _has_empty_coding(raw):
    """Whether a Transfer-Encoding line has an empty list element (",chunked", "chunked,")."""
    return any(not e.strip(b" \t") for v in _field_values(_request(raw), b"transfer-encoding")
               for e in v.split(b","))


def _codings(raw):
    codings = []
    for value in _field_values(_request(raw), b"transfer-encoding"):
        codings += [c.strip(b" \t").split(b";")[0].strip().lower() for c in value.split(b",") if c.strip(b" \t")]
    return codings


EXPLAINED = [
    ("a chunk-size line that is not chunk-size *(BWS ; BWS name [BWS = BWS value]) is 400 "
     "(RFC 9112 §7.1, §7.1.1: no space after the size without an extension, no empty names or "
     "values)",
     lambda raw, st: st == 400 and any(not CHUNK_LINE.fullmatch(line) for line in _chunk_lines(raw))),
    ("the request line is method SP target SP version, one space each (RFC 9112 §3; parsing "
     "on runs of whitespace is only a MAY)",
     lambda raw, st: st == 400 and re.match(rb"\S+ \S+ HTTP/\d\.\d$", _request_line(raw)) is None),
    ("framing fields (Content-Length, Transfer-Encoding) in trailers are refused (RFC 9110 "
     "§6.5.1 forbids them there)",
     lambda raw, st: st == 400 and re.search(rb"(?i)\r\n0[^\r]*\r\n(?:[^\r]*\r\n)*(content-length|transfer-encoding):",
                                             _request(raw)) is not None),
    ("a bare LF (or CR) is not a line end: 400 (RFC 9112 §2.2 lets a recipient accept a bare "
     "LF; the MAY is not taken, as nginx and llhttp do not)",
     lambda raw, st: st == 400 and re.search(rb"(?<!\r)\n|\r(?!\n)", _request(raw).split(b"\r\n\r\n")[0] + b"\r\n") is not None),
    ("a Connection field that is not a list of tokens is 400 (RFC 9110 §7.6.1; Beast checks it)",
     lambda raw, st: st == 400 and any(not re.fullmatch(rb"[\s,]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+([\s]*,[\s,]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+)*[\s,]*", v)
                                       for v in _field_values(_request(raw), b"connection"))),
    ("exactly one Content-Length, of digits only: a list (\"5, 5\") or a repeated line is 400 "
     "(RFC 9110 §8.6 allows either answer; llhttp and nginx refuse)",
     lambda raw, st: st == 400 and (len(_field_values(_request(raw), b"content-length")) > 1 or any(
         not re.fullmatch(rb"[0-9]+", v) for v in _field_values(_request(raw), b"content-length")))),
    ("chunked applied more than once is 400 (RFC 9112 §6.1: a sender MUST NOT)",
     lambda raw, st: st == 400 and _codings(raw).count(b"chunked") > 1),
    ("obs-fold is refused in every field, trailers too (RFC 9112 §5.2 allows 400)",
     lambda raw, st: st == 400 and (re.search(rb"\n[ \t]", _request(raw).split(b"\r\n\r\n")[0]) or re.search(
         rb"\r\n0[^\r]*\r\n(?:[^\r]*\r\n)*[ \t]", _request(raw)))),
    ("Transfer-Encoding is read strictly: a coding that is not a token, or a list with no coding "
     "at all, is 400 (RFC 9112 §6.3: a request whose final coding is not chunked is refused; "
     "empty elements are skipped, as RFC 9110 §5.6.1 requires)",
     lambda raw, st: st == 400 and (
         any(not re.fullmatch(rb"\s*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(\s*;[^,]*)?\s*", e)
             for v in _field_values(_request(raw), b"transfer-encoding")
             for e in v.split(b",") if e.strip(b" \t"))
         or (_field_values(_request(raw), b"transfer-encoding") and not _codings(raw)))),
    ("a Transfer-Encoding line after one ending in chunked is 400, even an empty one: Beast "
     "refuses any (RFC 9112 §6.1: chunked is the final coding; no sender sends an empty line)",
     lambda raw, st: st == 400 and _line_after_chunked(raw)),
    ("a Host that is missing (HTTP/1.1), repeated or not a valid uri-host [: port] is 400 "
     "(RFC 9112 §3.2 MUST)", _host_policy),
    ("only origin-form, absolute-form and OPTIONS * targets are routed, with valid "
     "percent-encoding (RFC 9112 §3.2)",
     lambda raw, st: st == 400 and not re.match(rb"(\S+ (/[^ ?#]*(\?\S*)?|https?://\S+)|OPTIONS \*) ", _request_line(raw))
     or st == 400 and re.search(rb"%(?![0-9A-Fa-f]{2})", _request_line(raw))),
    ("an expectation other than 100-continue is 417 (RFC 9110 §10.1.1)",
     lambda raw, st: st == 417),
    ("CONNECT is not implemented: 501 (RFC 9110 §9.3.6)",
     lambda raw, st: st == 501 and _request(raw).startswith(b"CONNECT")),
    ("Transfer-Encoding in HTTP/1.0 is faulty framing: 400 (RFC 9112 §6.1)",
     lambda raw, st: st == 400 and b"HTTP/1.0" in _request_line(raw) and b"transfer-encoding" in _lower_fields(_request(raw))),
    ("Content-Length together with Transfer-Encoding is refused (RFC 9112 §6.3 allows it)",
     lambda raw, st: st == 400 and {b"transfer-encoding", b"content-length"} <= set(_lower_fields(_request(raw)))),
    ("more than 100 header fields are 431 (Envoy's limit)",
     lambda raw, st: st == 431 and len(_lower_fields(_request(raw))) > 100),
    ("a head over 8 KiB is 431 or 414", lambda raw, st: st in (414, 431) and len(raw) > 8192),
    ("Beast parses versions HTTP/1.0 and 1.1 only: 400 for others (HTTP/1.2 would be 1.1 by "
     "RFC 9110 §2.5; nobody sends it)",
     lambda raw, st: st == 400 and not re.search(rb" HTTP/1\.[01]$", _request_line(raw))),
    ("a field value with a control byte (other than HTAB) is refused (RFC 9110 §5.5 allows it)",
     lambda raw, st: st == 400 and re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", b"".join(
         line.partition(b":")[2] for line in _request(raw).split(b"\r\n\r\n")[0].split(b"\r\n")[1:]))),
]

# Where a reference refuses what printerfacts accepts, and RFC 9110/9112 is on printerfacts'
# side: (reference, reason, predicate over the input). Anything else printerfacts accepts and a
# reference refuses is a defect.
REFERENCE_QUIRKS = [
    ("llhttp", "llhttp refuses methods it does not know (HPE_INVALID_METHOD); RFC 9110 §9.1 "
     "allows any token, and printerfacts answers them 404/405. h11 accepts any token, so a "
     "framing difference hidden here would still show against h11",
     lambda raw, ref: _error(ref) == "HPE_INVALID_METHOD"),
    ("llhttp", "llhttp's strict mode refuses BWS in chunk extensions (HPE_STRICT), which RFC 9112 "
     "§7.1.1 allows",
     lambda raw, ref: _error(ref) == "HPE_STRICT" and any(
         re.search(rb"[ \t];|;[ \t]", line) for line in _chunk_lines(raw))),
    ("llhttp", "BWS before a chunk extension's ';' is allowed by RFC 9112 §7.1.1 (chunk-ext = "
     "*( BWS \";\" ...)); llhttp refuses it (HPE_INVALID_CHUNK_SIZE). The chunk size, and so "
     "the framing, is the same",
     lambda raw, ref: _error(ref) == "HPE_INVALID_CHUNK_SIZE" and any(
         re.match(rb"[0-9A-Fa-f]+[ \t]+;", line) for line in _chunk_lines(raw))),
    ("h11", "BWS before a chunk extension's ';' is allowed by RFC 9112 §7.1.1; h11's chunk "
     "header pattern refuses it. The chunk size, and so the framing, is the same",
     lambda raw, ref: "illegal chunk header" in str(_error(ref)) and any(
         re.match(rb"[0-9A-Fa-f]+[ \t]+;", line) for line in _chunk_lines(raw))),
    ("h11", "h11 refuses empty lines before the request line; RFC 9112 §2.2 says a server "
     "SHOULD ignore at least one",
     lambda raw, ref: raw.startswith(b"\r\n") and ref[-1] == ("refused", "no request line received")),
    ("h11", "h11 never keeps an HTTP/1.0 connection open (a documented choice); RFC 9112 §9.3 "
     "and llhttp keep it open on \"Connection: keep-alive\"",
     lambda raw, ref: ref[-1] == ("end",) and re.match(rb"\S+ \S+ HTTP/1\.0\r\n", raw) is not None and re.search(
         rb"(?i)\r\nconnection:[^\r]*keep-alive", _request(raw)) is not None),
    ("llhttp", "llhttp refuses empty elements in the Transfer-Encoding list "
     "(HPE_INVALID_TRANSFER_ENCODING); RFC 9110 §5.6.1 says a recipient MUST accept and ignore "
     "them, so ',chunked' is chunked, as Beast frames it",
     lambda raw, ref: _error(ref) == "HPE_INVALID_TRANSFER_ENCODING" and _has_empty_coding(raw)
     and _codings(raw)[-1:] == [b"chunked"] and _codings(raw).count(b"chunked") == 1),
    ("h11", "h11 refuses a Transfer-Encoding with empty list elements; RFC 9110 §5.6.1 says a "
     "recipient MUST accept and ignore them",
     lambda raw, ref: _has_empty_coding(raw) and _codings(raw)[-1:] == [b"chunked"]
     and _codings(raw).count(b"chunked") == 1),
    ("h11", "h11 refuses a request whose Transfer-Encoding is anything but exactly 'chunked' "
     "(it implements no other coding); deflate, chunked is valid framing (RFC 9112 §6.1)",
     lambda raw, ref: _codings(raw)[-1:] == [b"chunked"] and len(_codings(raw)) > 1),
]


# Where printerfacts, at the end of the input, was still waiting for the rest of a message that a
# reference had already refused: (reason, predicate). printerfacts answers nothing then. None
# now: a chunk-size line whose quoted extension runs past its end, the one case there was, is
# refused at the end of the line.
STILL_READING = []


def classify(raw, pf, ref_name, ref):
    """(verdict, reason) for one reference: verdict is "agree", "explained" or "defect"."""
    n_pf, probe_pf, end_pf = shape(pf)
    n_ref, probe_ref, end_ref = shape(ref)
    if (n_pf, probe_pf, end_pf) == (n_ref, probe_ref, end_ref):
        return "agree", None
    if n_pf == 0 and n_ref > 0 and end_pf == "refused":
        # printerfacts refused the request the reference accepted: stricter, only on purpose.
        # (The policies speak of that request; printerfacts refusing what follows a request
        # both accepted is a framing difference, and never explained.)
        status = pf[-1][1]
        reason = next((r for r, pred in EXPLAINED if pred(raw, status)), None)
        if reason:
            return "explained", reason
        return "defect", f"printerfacts refused ({status}) what {ref_name} accepted: {ref}"
    if n_ref < n_pf:
        # printerfacts accepted a request the reference refused, or went on where it stopped.
        reason = next((r for q, r, pred in REFERENCE_QUIRKS if q == ref_name and pred(raw, ref)), None)
        if reason:
            return "explained", reason
        return "defect", f"printerfacts accepted what {ref_name} refused or ended ({ref[-1]}): {pf}"
    if n_pf <= n_ref and not probe_pf and end_pf == "end":
        reason = next((r for r, pred in STILL_READING if pred(raw)), None)
        if reason:
            return "explained", reason
    return "defect", f"framing differs from {ref_name}: printerfacts {pf}, {ref_name} {ref}"


# ---------------------------------------------------------------------------------------------
# Running


class Implementations:
    """printerfacts and the llhttp server running on Unix sockets in a temporary directory."""

    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="pfd-", dir="/tmp")
        self.pf_path = os.path.join(self.dir, "pf.sock")
        self.node_path = os.path.join(self.dir, "node.sock")
        self.pf = subprocess.Popen(
            [binary, "--listen", "unix:" + self.pf_path, "--access-log", "off", "--threads", "1",
             "--header-timeout", "5s"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.node = subprocess.Popen(["node", os.path.join(HERE, "llhttp_server.js"), self.node_path],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._wait(self.node.stdout, b"ready")
        self._wait_connectable(self.pf_path, self.pf)

    @staticmethod
    def _wait(stream, word):
        line = stream.readline()
        if word not in line:
            raise RuntimeError(f"reference did not start: {line!r}")

    @staticmethod
    def _wait_connectable(path, proc, timeout=30):
        # printerfacts binds its socket before it says it is ready, and serves once it has bound.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("printerfacts exited: " + proc.stderr.read().decode())
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                s.close()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("printerfacts did not start listening")

    def outcomes(self, raw):
        return (printerfacts_outcome(self.pf_path, raw),
                {"llhttp": llhttp_outcome(self.node_path, raw), "h11": h11_outcome(raw)})

    def close(self):
        for p in (self.pf, self.node):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def run(binary, inputs):
    """Compares every (name, raw) input; returns (count, failures, tally of explanations)."""
    impls = Implementations(binary)
    failures = []
    tally = collections.Counter()
    count = 0
    try:
        for name, raw in inputs:
            count += 1
            pf, refs = impls.outcomes(raw)
            for ref_name, ref in refs.items():
                verdict, reason = classify(raw, pf, ref_name, ref)
                if verdict == "defect":
                    failures.append((name, raw, reason))
                elif verdict == "explained":
                    tally[(ref_name, reason)] += 1
            if impls.pf.poll() is not None:
                failures.append((name, raw, f"printerfacts exited ({impls.pf.returncode})"))
                break
    finally:
        impls.close()
    return count, failures, tally


def report(count, failures, tally, out=sys.stdout):
    print(f"{count} inputs compared with llhttp (node {node_version()}) and h11 {h11.__version__}",
          file=out)
    print("explained disagreements (input count, reference, reason):", file=out)
    for (ref_name, reason), n in sorted(tally.items(), key=lambda kv: -kv[1]):
        print(f"  {n:6d}  {ref_name:6s}  {reason}", file=out)
    kinds = collections.Counter((problem.split(":")[0], name) for name, _, problem in failures)
    for (problem, name), n in kinds.most_common(40):
        print(f"  {n:5d} {name:40s} {problem}", file=out)
    for name, raw, problem in failures[:12]:
        print(f"DISAGREEMENT [{name}] {raw!r}\n    {problem}", file=out)
    print(f"{len(failures)} unexplained disagreements", file=out)


def node_version():
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--binary", default=os.path.join(HERE, "..", "..", "build", "dev", "printerfacts"))
    args = parser.parse_args()
    count, failures, tally = run(os.path.abspath(args.binary), generate(args.seed, args.count))
    report(count, failures, tally)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
