"""Reload on SIGHUP and the lame-duck shutdown delay, on the real binary.

A reload re-reads the command line's --config file and applies --facts-file, --static-dir,
--log-level and the peer allow-lists in place: no request and no connection is lost, an invalid
configuration keeps the old one, and systemd hears RELOADING=1 then READY=1."""

import os
import signal
import threading
import time

import pytest

from conftest import exchange, metrics, unix_connect, wait_until

GET_FACT = b"GET /fact HTTP/1.1\r\nHost: x\r\n\r\n"


def write(path, text):
    # Replaced whole, as an editor or a configuration manager would, so a reload never sees
    # half a file.
    with open(path + ".new", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".new", path)


def notifications(server):
    """The notify messages the server sent since the last call, e.g. ['RELOADING=1', 'READY=1']."""
    return server.notifications()


def outcomes(server):
    """How many reloads the server has logged the outcome of."""
    return server.stderr().count("reloaded:") + server.stderr().count("reload failed")


def reload_and_wait(server, outcomes_before):
    """Sends SIGHUP and waits until the server has logged the outcome of one more reload."""
    server.signal(signal.SIGHUP)
    wait_until(lambda: outcomes(server) > outcomes_before, "the reload's outcome")


def metric(sock_path, name):
    samples = metrics(sock_path)
    assert name in samples, f"{name} not in /metrics"
    return samples[name]


def serving_facts_from_a_config(start, workdir, fact, *flags):
    """A server whose --config file names a facts file holding `fact`; returns the server, the
    config file's path and the socket's, with the start-up notifications already read."""
    facts = os.path.join(workdir, "facts.txt")
    config = os.path.join(workdir, "printerfacts.toml")
    write(facts, fact)
    write(config, f'facts-file = "{facts}"\n')
    sock_path = os.path.join(workdir, "pf.sock")
    server = start("--listen", f"unix:{sock_path}", "--config", config, "--metrics-on-main", *flags)
    notifications(server)
    return server, config, sock_path


def test_sighup_rereads_the_facts_file_in_place_without_losing_a_request(start, workdir):
    facts = os.path.join(workdir, "facts.txt")
    server, config, sock_path = serving_facts_from_a_config(start, workdir, "The old fact.\n",
                                                            "--access-log", "off")

    # Clients hammer the server across the reload, each on one keep-alive connection.
    failures, answers, stop = [], [], threading.Event()

    def client():
        try:
            with unix_connect(sock_path) as s:
                while not stop.is_set():
                    status, _, body, _ = exchange(s, GET_FACT)
                    if status != 200:
                        failures.append(status)
                    answers.append(body)
        except OSError as e:
            failures.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: len(answers) > 50, "requests before the reload")
    write(facts, "The new fact.\n")
    reload_and_wait(server, outcomes(server))
    seen_before = len(answers)
    wait_until(lambda: len(answers) > seen_before + 50, "requests after the reload")
    stop.set()
    for t in threads:
        t.join(timeout=30)

    assert failures == [], failures
    assert "reloaded: 1 facts" in server.stderr()
    assert answers[0] == b"The old fact.\n"
    assert answers[-1] == b"The new fact.\n", "the same keep-alive connections see the new facts"
    assert set(answers) == {b"The old fact.\n", b"The new fact.\n"}
    assert notifications(server)[-2:] == ["RELOADING=1", "READY=1"]
    assert metric(sock_path, 'printerfacts_reloads_total{result="applied"}') == 1
    assert server.proc.poll() is None
    assert server.stop() == 0


def test_an_invalid_reload_keeps_the_running_configuration_and_says_why(start, workdir):
    server, config, sock_path = serving_facts_from_a_config(start, workdir, "Still this fact.\n")

    missing = os.path.join(workdir, "missing.txt")
    broken = {
        "a facts file that is not there": f'facts-file = "{missing}"\n',
        "a static dir that is not there": f'static-dir = "{missing}"\n',
        "a flag that does not exist": 'no-such-flag = 1\n',
        "a value out of range": 'log-level = "loud"\n',
        "a user that does not exist": 'allow-uid = ["no-such-user-here"]\n',
    }
    for what, text in broken.items():
        write(config, text)
        before = server.stderr().count("reload failed")
        server.signal(signal.SIGHUP)
        wait_until(lambda: server.stderr().count("reload failed") > before, what)
        with unix_connect(sock_path) as s:
            status, _, body, _ = exchange(s, GET_FACT)
        assert (status, body) == (200, b"Still this fact.\n"), what
    log = server.stderr()
    assert missing in log, "the error names the file at fault"
    assert "no-such-flag" in log and "no-such-user-here" in log
    assert metric(sock_path, 'printerfacts_reloads_total{result="failed"}') == len(broken)
    assert notifications(server)[-2:] == ["RELOADING=1", "READY=1"], "systemd is told it is over"

    os.remove(config)
    reload_and_wait(server, outcomes(server))
    assert config in server.stderr().splitlines()[-1], "the error names the missing config file"
    assert server.stop() == 0


def test_reload_applies_the_allow_list_and_log_level_and_names_what_needs_a_restart(start, workdir):
    config = os.path.join(workdir, "printerfacts.toml")
    write(config, "")
    sock_path = os.path.join(workdir, "pf.sock")
    server = start("--listen", f"unix:{sock_path}", "--config", config)
    held = unix_connect(sock_path)  # an open keep-alive connection across every reload
    assert exchange(held, GET_FACT)[0] == 200

    # Only a user we are not may connect now: new connections are refused, unread.
    write(config, f'allow-uid = ["{os.getuid() + 4242}"]\nthreads = 7\nlog-level = "debug"\n')
    reload_and_wait(server, outcomes(server))
    assert "--threads changed; the new value takes effect at the next restart" in server.stderr()
    with unix_connect(sock_path) as s:
        try:  # closed unread: an end of stream, a reset, or closed before we could even send
            s.sendall(GET_FACT)
            assert s.recv(100) == b"", "a peer outside the new allow-list is closed"
        except (ConnectionResetError, BrokenPipeError):
            pass
    wait_until(lambda: "peer credentials not allowed" in server.stderr(), "the refusal said")
    assert exchange(held, GET_FACT)[0] == 200, "a connection admitted before stays served"

    write(config, f'allow-uid = ["{os.getuid()}"]\nlog-level = "warn"\n')
    reload_and_wait(server, outcomes(server))
    with unix_connect(sock_path) as s:
        assert exchange(s, GET_FACT)[0] == 200
    # At "warn", the next reload's info lines are no longer printed, its warnings still are.
    write(config, f'allow-uid = ["{os.getuid()}"]\nlog-level = "warn"\nidle-timeout = "5s"\n')
    lines_before = len(server.stderr().splitlines())
    server.signal(signal.SIGHUP)
    wait_until(lambda: "--idle-timeout changed" in server.stderr(), "the restart-only warning")
    new_lines = server.stderr().splitlines()[lines_before:]
    assert not any(" info " in line for line in new_lines), new_lines
    held.close()
    assert server.stop() == 0


def test_shutdown_delay_keeps_serving_with_healthz_503_then_drains(start, workdir):
    sock_path = os.path.join(workdir, "pf.sock")
    server = start("--listen", f"unix:{sock_path}", "--shutdown-delay", "3s")
    held = unix_connect(sock_path)
    assert exchange(held, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[:1] == (200,)
    signalled = time.monotonic()
    server.signal(signal.SIGTERM)
    wait_until(lambda: "/healthz answering 503" in server.stderr(), "the lame-duck phase")

    status, _, body, _ = exchange(held, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, body) == (503, b"shutting down\n")
    assert exchange(held, GET_FACT)[0] == 200, "requests on an open connection are still served"
    with unix_connect(sock_path) as s:  # and new connections still accepted
        assert exchange(s, GET_FACT)[0] == 200
    assert os.path.exists(sock_path)

    assert server.proc.wait(timeout=30) == 0
    assert time.monotonic() - signalled >= 3
    assert not os.path.exists(sock_path)
    held.close()


def test_a_second_signal_ends_the_shutdown_delay_early(start, workdir):
    sock_path = os.path.join(workdir, "pf.sock")
    server = start("--listen", f"unix:{sock_path}", "--shutdown-delay", "10m")
    server.signal(signal.SIGTERM)
    wait_until(lambda: "/healthz answering 503" in server.stderr(), "the lame-duck phase")
    server.signal(signal.SIGINT)
    assert server.proc.wait(timeout=30) == 0
    assert "ending the shutdown delay early" in server.stderr()
    assert not os.path.exists(sock_path)


def test_sighup_the_moment_ready_is_sent_never_kills_the_process(start, workdir):
    # As with SIGTERM: the handler is installed before readiness is reported.
    sock_path = os.path.join(workdir, "pf.sock")
    for _ in range(10):
        server = start("--listen", f"unix:{sock_path}")
        server.signal(signal.SIGHUP)
        wait_until(lambda: "reloaded:" in server.stderr(), "the reload")
        assert server.proc.poll() is None
        assert server.stop() == 0
