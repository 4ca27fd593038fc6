"""The command line as an operator meets it: help, version, --check, start-up errors."""

import os
import re
import subprocess

from conftest import BINARY
from package import changelog_version


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


def test_version_names_the_commit_the_build_was_made_from():
    r = run("--version")
    assert r.returncode == 0
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    head = subprocess.run(["git", "-C", root, "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True)
    m = re.fullmatch(r"printerfacts (\S+) \(commit ([0-9a-f]{12}(?:-dirty)?|unknown)\)\n", r.stdout)
    assert m, r.stdout
    # The version is declared once, in debian/changelog; NEWS.md's newest section is about it.
    version = changelog_version()
    assert m.group(1) == version, (r.stdout, version)
    news = open(os.path.join(root, "NEWS.md"), encoding="utf-8").read()
    assert re.search(r"^## (.*)$", news, re.M).group(1).startswith(version + " "), "NEWS.md's newest section"
    if head.returncode == 0:
        # Built from this checkout (the suite builds before it runs): its HEAD, or HEAD plus
        # changes not committed yet.
        assert m.group(2).split("-")[0] == head.stdout.strip(), (r.stdout, head.stdout)


def test_check_accepts_a_valid_configuration_and_creates_nothing(tmp_path):
    r = run("--check", "--listen", "unix:./pf.sock", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout
    assert os.listdir(tmp_path) == []


def test_check_rejects_with_the_reason_and_the_exit_status():
    for args, fragment, status in [
        (["--listen", "unix:/nonexistent-dir/pf.sock"], "the directory /nonexistent-dir does not exist", 66),
        (["--facts-file", "/nonexistent/facts.txt"], "/nonexistent/facts.txt", 66),
        (["--static-dir", "/nonexistent/static"], "/nonexistent/static", 66),
        (["--socket-group", "no-such-group"], 'no group named "no-such-group"', 78),
        (["--threads", "2000"], "--threads", 78),
        (["--listen", "tcp:1.2.3.4:99999"], "the port must be a number from 0 to 65535", 64),
        (["--listen", "tcp:no-such-host.invalid:8080"], "cannot resolve the host of tcp:no-such-host.invalid:8080", 78),
        (["--listen", "tcp:192.0.2.1:8080"], "no network interface has that address", 78),
    ]:
        r = run("--check", *args)
        assert r.returncode == status, (args, r.returncode, r.stderr)
        assert fragment in r.stderr, (args, r.stderr)


def test_check_refuses_a_regular_file_at_the_socket_path(tmp_path):
    (tmp_path / "pf.sock").write_text("data")
    r = run("--check", "--listen", "unix:./pf.sock", cwd=tmp_path)
    assert r.returncode == 78
    assert "is not a socket" in r.stderr


def test_check_finds_a_tcp_port_in_use_and_binds_nothing_itself():
    import socket
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    r = run("--check", "--listen", f"tcp:127.0.0.1:{port}")
    assert r.returncode == 69, r.stderr
    assert f"cannot listen on tcp:127.0.0.1:{port}: the port is in use" in r.stderr
    taken.close()
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    assert run("--check", "--listen", f"tcp:127.0.0.1:{port}").returncode == 0
    # --check closed it again: the port can be listened on at once.
    again = socket.socket()
    again.bind(("127.0.0.1", port))
    again.close()


def as_nobody(*args, cwd=None):
    """The binary run as user nobody, as a service user would run it."""
    if os.geteuid() != 0:
        import pytest
        pytest.skip("running as another user needs root")
    return subprocess.run(["runuser", "-u", "nobody", "--", BINARY, *args], capture_output=True,
                          text=True, timeout=20, cwd=cwd, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def test_check_as_another_user_finds_what_a_start_would():
    # A socket directory the running user cannot write: said with the user and the fix, never the
    # internal lock file; --check and a real start agree.
    import shutil
    import tempfile
    top = tempfile.mkdtemp(prefix="pf-cli-", dir="/tmp")  # reachable by nobody, unlike tmp_path
    try:
        _as_another_user(top)
    finally:
        shutil.rmtree(top)


def _as_another_user(top):
    os.chmod(top, 0o755)
    private = os.path.join(top, "private")
    os.mkdir(private, 0o755)
    sock = f"unix:{private}/pf.sock"
    for mode in (["--check"], []):
        r = as_nobody(*mode, "--listen", sock)
        assert r.returncode == 77, (mode, r.stderr)
        assert f"the directory {private} is not writable by user nobody" in r.stderr, r.stderr
        assert ".lock" not in r.stderr
    assert os.listdir(private) == []
    # A socket group the user is not a member of: named, with the fix.
    os.chmod(private, 0o777)
    for mode in (["--check"], []):
        r = as_nobody(*mode, "--listen", sock, "--socket-group", "root")
        assert r.returncode == 77, (mode, r.stderr)
        assert "cannot give the socket" in r.stderr and "the group root: user nobody" in r.stderr, r.stderr
        assert "usermod -aG root" in r.stderr
    assert os.listdir(private) == [], "a start that failed leaves nothing behind"
    # A port below 1024.
    r = as_nobody("--check", "--listen", "tcp:127.0.0.1:80")
    assert r.returncode == 77 and "CAP_NET_BIND_SERVICE" in r.stderr, r.stderr
    # And a configuration that is fine for the user.
    r = as_nobody("--check", "--listen", sock)
    assert r.returncode == 0, r.stderr


def test_exit_status_tells_usage_from_configuration(tmp_path):
    r = run("--frobnicate")
    assert r.returncode == 64 and "unknown flag --frobnicate" in r.stderr
    r = run("--facts-flie", "/x")
    assert r.returncode == 64 and "did you mean --facts-file?" in r.stderr, r.stderr
    r = run("--threads", "many")
    assert r.returncode == 64
    assert '--threads "many": expected a whole number such as 4' in r.stderr, r.stderr
    config = tmp_path / "pf.toml"
    config.write_text('# printerfacts\nthreads = 2\nfacts-flie = "/srv/facts.txt"\n')
    r = run("--config", str(config))
    assert r.returncode == 78
    assert f'{config}:3: unknown setting "facts-flie"; did you mean "facts-file"?' in r.stderr, r.stderr
    config.write_text("threads = many\n")
    r = run("--config", str(config))
    assert r.returncode == 78 and f"{config}:1:11:" in r.stderr, r.stderr


def test_print_config_says_where_each_value_came_from(tmp_path):
    config = tmp_path / "pf.toml"
    config.write_text('# printerfacts\nthreads = 2\n\nallow-uid = ["www-data", "7"]\nlog-level = "warning"\n')
    r = run("--print-config", "--config", str(config), "--log-level", "debug",
            env={"PATH": "/usr/bin:/bin", "SOCKPATH": "/run/pf.sock"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert f"threads = 2  # {config}:2" in lines, r.stdout
    assert f'allow-uid = ["www-data", "7"]  # {config}:4, reloadable' in lines, r.stdout
    assert 'log-level = "debug"  # command line, reloadable' in lines, r.stdout
    assert 'listen = ["unix:/run/pf.sock"]  # environment SOCKPATH' in lines, r.stdout
    assert 'idle-timeout = "60s"  # default' in lines, r.stdout
    # What it prints is a config file that gives the same configuration.
    printed = tmp_path / "printed.toml"
    printed.write_text(r.stdout)
    again = run("--print-config", "--config", str(printed))
    strip = lambda text: [line.split("  #")[0] for line in text.splitlines()]
    assert strip(again.stdout) == strip(r.stdout)
    # An invalid configuration is printed, then refused.
    r = run("--print-config", "--threads", "5000")
    assert "threads = 5000  # command line" in r.stdout and r.returncode == 78


def test_check_reload_checks_what_a_reload_reads(tmp_path):
    config = tmp_path / "pf.toml"
    config.write_text('static-dir = "/nonexistent/static"\n')
    r = run("--check-reload", "--config", str(config))
    assert r.returncode == 66 and "/nonexistent/static" in r.stderr, r.stderr
    config.write_text('log-level = "warning"\n')
    r = run("--check-reload", "--config", str(config))
    assert r.returncode == 0 and "reload configuration OK" in r.stdout, r.stderr


def test_empty_facts_file_is_a_startup_error(tmp_path):
    (tmp_path / "facts.txt").write_text("\n\n")
    r = run("--listen", "unix:./pf.sock", "--facts-file", str(tmp_path / "facts.txt"), cwd=tmp_path)
    assert r.returncode == 78
    assert "contains no facts" in r.stderr
    assert not (tmp_path / "pf.sock").exists()


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_the_docs_hold_the_settings_table_as_generated():
    """README.md, printerfacts(1), docs/deployment.md and the shipped config file hold the
    settings table's rendering between their markers (scripts/update-docs writes it)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("update_docs", os.path.join(ROOT, "scripts", "update-docs"),
                                                  loader=importlib.machinery.SourceFileLoader(
                                                      "update_docs", os.path.join(ROOT, "scripts", "update-docs")))
    update_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update_docs)
    build_dir = os.path.dirname(BINARY)
    for path, kind, start, end in update_docs.TARGETS:
        text = open(os.path.join(ROOT, path), encoding="utf-8").read()
        _, inside, _ = update_docs.region(text, start, end)
        assert inside == update_docs.generated(build_dir, kind), \
            f"{path} is out of date with the settings table: run scripts/update-docs"


def test_help_lists_every_setting_of_the_readme():
    import re
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    flags = set(re.findall(r"^\| `(--[a-z-]+)", readme, re.M))
    help_text = run("--help").stdout
    assert len(flags) > 30
    for flag in flags:
        if flag not in ("--version",):
            assert flag in help_text, flag


def test_the_descriptor_limit_is_raised_to_what_max_connections_needs_or_said():
    def check(limits, *args):
        return subprocess.run(["prlimit", f"--nofile={limits}", BINARY, "--check", "--listen",
                               "tcp:127.0.0.1:0", *args], capture_output=True, text=True, timeout=20)
    # Soft 256, hard 8192: 3000 connections fit once the soft limit is raised; nothing to say.
    r = check("256:8192", "--max-connections", "3000")
    assert r.returncode == 0 and "descriptors" not in r.stderr, r.stderr
    # Hard 1024: the default --max-connections 16384 cannot be had; said, with the fix.
    r = check("256:1024")
    assert r.returncode == 0, r.stderr
    assert "--max-connections 16384 needs about" in r.stderr and "LimitNOFILE=" in r.stderr, r.stderr
    assert "configuration OK (with the warnings above)" in r.stdout
    r = check("256:1024", "--max-connections", "500")
    assert r.returncode == 0 and "descriptors" not in r.stderr, r.stderr


def test_a_running_server_raises_its_soft_descriptor_limit(start):
    server = start("--listen", "tcp:127.0.0.1:0", "--max-connections", "3000",
                   wrapper=["prlimit", "--nofile=1024:8192"])
    with open(f"/proc/{server.proc.pid}/limits") as f:
        line = next(l for l in f if l.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    assert int(hard) == 8192 and 3000 < int(soft) <= 8192, line


def test_every_exit_status_is_documented():
    """The statuses util/startup_error.hpp declares are the ones printerfacts(1) and the README
    list, and --help names them too: a code added or changed there fails here until they say so."""
    import re
    header = open(os.path.join(ROOT, "src", "util", "startup_error.hpp"), encoding="utf-8").read()
    codes = set(re.findall(r"inline constexpr int \w+ = (\d+);", header))
    assert {"0", "1", "64", "78"} <= codes, codes
    page = open(os.path.join(ROOT, "docs", "printerfacts.1"), encoding="utf-8").read()
    section = page[page.index(".SH EXIT STATUS"):page.index(".SH SEE ALSO")]
    assert set(re.findall(r"^\.B (\d+)$", section, re.M)) == codes, section
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    listed = readme[readme.index("Exit status (sysexits)"):]
    listed = listed[:listed.index("\n\n")]
    assert set(re.findall(r"`(\d+)`", listed)) == codes, listed
    help_text = run("--help").stdout
    for code in codes - {"0"}:
        assert re.search(rf"\b{code}\b", help_text), code
