"""The command line as an operator meets it: help, version, --check, start-up errors."""

import os
import subprocess

from conftest import BINARY


def run(*args, cwd=None, env=None):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=20, cwd=cwd,
                          env=env or {"PATH": "/usr/bin:/bin"})


def test_help_lists_every_flag_and_variable():
    r = run("--help")
    assert r.returncode == 0
    for item in ["--listen", "--socket-mode", "--socket-group", "--backlog", "--threads",
                 "--facts-file", "--static-dir", "--max-header-size", "--max-body-size",
                 "--header-timeout", "--idle-timeout", "--send-timeout", "--shutdown-timeout",
                 "--access-log", "--check", "--version", "--metrics-listen", "--metrics-socket-mode",
                 "--metrics-socket-group", "--metrics-on-main", "--allow-uid", "--allow-gid",
                 "--log-format", "--log-level", "JOURNAL_STREAM", "--max-connections", "--allow-world", "SOCKPATH", "PORT", "LISTEN_FDS"]:
        assert item in r.stdout, item


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("printerfacts ")


def test_check_accepts_a_valid_configuration_and_creates_nothing(tmp_path):
    r = run("--check", "--listen", "unix:./pf.sock", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout
    assert os.listdir(tmp_path) == []


def test_check_rejects_with_the_reason():
    for args, fragment in [
        (["--listen", "unix:/nonexistent-dir/pf.sock"], "/nonexistent-dir"),
        (["--facts-file", "/nonexistent/facts.txt"], "/nonexistent/facts.txt"),
        (["--static-dir", "/nonexistent/static"], "/nonexistent/static"),
        (["--socket-group", "no-such-group"], "no-such-group"),
        (["--threads", "2000"], "--threads"),
        (["--listen", "tcp:1.2.3.4:99999"], "port"),
    ]:
        r = run("--check", *args)
        assert r.returncode != 0, args
        assert fragment in r.stderr, (args, r.stderr)


def test_check_refuses_a_regular_file_at_the_socket_path(tmp_path):
    (tmp_path / "pf.sock").write_text("data")
    r = run("--check", "--listen", "unix:./pf.sock", cwd=tmp_path)
    assert r.returncode != 0
    assert "is not a socket" in r.stderr


def test_empty_facts_file_is_a_startup_error(tmp_path):
    (tmp_path / "facts.txt").write_text("\n\n")
    r = run("--listen", "unix:./pf.sock", "--facts-file", str(tmp_path / "facts.txt"), cwd=tmp_path)
    assert r.returncode == 1
    assert "contains no facts" in r.stderr
    assert not (tmp_path / "pf.sock").exists()


def test_unknown_flag_fails():
    r = run("--frobnicate")
    assert r.returncode != 0
    assert "frobnicate" in r.stderr


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def help_flags():
    """{flag: default or None} as `printerfacts --help` lists them: the source of truth."""
    import re
    out = subprocess.run([BINARY, "--help"], capture_output=True, text=True, check=True).stdout
    flags = {}
    for line in out.splitlines():
        m = re.match(r"^  (?:-h,)?(--[a-z-]+)(?: [A-Z]+(?::\{[^}]*\})?(?:=(\S+))?)?(?: \.\.\.)?(?:\s|$)", line)
        if m and m.group(1) not in ("--help", "--version"):
            flags[m.group(1)] = m.group(2)
    assert len(flags) > 25, out
    return flags


def test_the_readme_flag_table_matches_help():
    import re
    rows = {}
    for line in open(os.path.join(ROOT, "README.md"), encoding="utf-8"):
        line = line.replace("\\|", "/")  # "on\|off" inside a cell
        m = re.match(r"^\| `(--[a-z-]+)[^|]*\| ([^|]*)\|", line)
        if m:
            rows[m.group(1)] = m.group(2).strip().strip("`")
    for flag, default in help_flags().items():
        assert flag in rows, f"{flag} is missing from the README's flag table"
        if default is not None:
            assert rows[flag] == default, f"README says {flag} defaults to {rows[flag]!r}, --help {default!r}"


def test_the_man_page_names_every_flag():
    page = open(os.path.join(ROOT, "deploy", "debian", "printerfacts.1"), encoding="utf-8").read()
    page = page.replace("\\-", "-")
    for flag in help_flags():
        assert flag in page, f"{flag} is missing from printerfacts(1)"
