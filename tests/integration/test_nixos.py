"""The NixOS module and package, as far as a machine without nixpkgs allows.

The module is evaluated with nixpkgs' own lib.evalModules (a copy of nixpkgs' lib ships in
tests/vendor; Debian's Nix 2.8 runs it), with the handful of NixOS options it sets declared by
nixos_eval.nix; what it gives systemd and nginx is checked value by value. package.nix is
evaluated with stand-ins for its build inputs, so its source filter is checked, not a build.
The install rules it relies on are checked by installing into a prefix as an unprivileged user.
A full NixOS evaluation or a nix build needs nixpkgs itself, which is not available here."""

import glob
import json
import os
import pathlib
import shutil
import subprocess
import tarfile
import tempfile

import pytest

from conftest import BINARY
from package import changelog_version

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NIXOS = os.path.join(ROOT, "deploy", "nixos")
VENDORED_LIB = os.path.join(ROOT, "tests", "vendor", "nixpkgs-lib.tar.gz")  # see its README


@pytest.fixture(scope="module")
def nix_lib(tmp_path_factory):
    """nixpkgs' lib directory, unpacked from the vendored tarball."""
    assert os.path.exists(VENDORED_LIB), f"{VENDORED_LIB} is missing"
    out = tmp_path_factory.mktemp("nixpkgs-lib")
    with tarfile.open(VENDORED_LIB) as t:
        t.extractall(out)
    [lib] = glob.glob(os.path.join(out, "*", "lib", "default.nix"))
    return os.path.dirname(lib)


def nix_eval(expression):
    r = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "-E", expression],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def evaluated(nix_lib):
    here = os.path.dirname(os.path.abspath(__file__))
    return nix_eval(f"import {here}/nixos_eval.nix {{ lib = import {nix_lib}; module = {NIXOS}/module.nix; }}")


def test_the_default_socket_and_service(evaluated):
    c = evaluated["plain"]
    socket = c["sockets"]["printerfacts"]
    assert socket["wantedBy"] == ["sockets.target"]
    assert "partOf" not in socket, "a restart of the service must not close the socket"
    assert socket["socketConfig"] == {
        "ListenStream": "/run/printerfacts/http.sock", "FileDescriptorName": "http", "SocketUser": "root",
        "SocketGroup": "root", "SocketMode": "0660", "DirectoryMode": "0755", "Backlog": 4096,
        "RemoveOnStop": True}
    assert "printerfacts-metrics" not in c["sockets"]
    service = c["services"]["printerfacts"]
    assert service["requires"] == ["printerfacts.socket"]
    assert service["after"] == ["printerfacts.socket"]
    sc = service["serviceConfig"]
    assert sc["Type"] == "notify" and sc["NotifyAccess"] == "main" and sc["WatchdogSec"] == "30s"
    assert sc["ExecStart"].endswith("-printerfacts-0.1.0/bin/printerfacts ")
    check, signal = sc["ExecReload"]
    assert check.endswith("-printerfacts-0.1.0/bin/printerfacts --check-reload "), check
    assert signal.endswith("-coreutils-9.4/bin/kill -HUP $MAINPID")
    assert sc["RestartPreventExitStatus"] == "64 78"
    assert sc["DynamicUser"] is True and sc["PrivateNetwork"] is True
    assert sc["RestrictAddressFamilies"] == ["AF_UNIX"]
    assert sc["SystemCallFilter"] == ["@system-service", "~@privileged"]
    assert c["nginx"]["enable"] is False and c["nginx"]["virtualHosts"] == {}
    assert c["warnings"] == []


def test_without_nginx_only_root_may_connect_and_with_it_nginx_may(evaluated):
    assert evaluated["plain"]["socketGroup"] == "root"
    with_nginx = evaluated["withNginx"]
    assert with_nginx["socketGroup"] == "nginx"
    assert with_nginx["sockets"]["printerfacts"]["socketConfig"]["SocketGroup"] == "nginx"
    assert with_nginx["nginx"]["enable"] is True
    assert "--trust-forwarded uid:nginx" in with_nginx["services"]["printerfacts"]["serviceConfig"]["ExecStart"]
    assert "--trust-forwarded" not in evaluated["plain"]["services"]["printerfacts"]["serviceConfig"]["ExecStart"]


def test_metrics_acme_and_extra_flags(evaluated):
    c = evaluated["full"]
    metrics = c["sockets"]["printerfacts-metrics"]
    assert "partOf" not in metrics
    assert metrics["socketConfig"]["ListenStream"] == "/run/printerfacts/metrics.sock"
    assert metrics["socketConfig"]["FileDescriptorName"] == "metrics"
    assert metrics["socketConfig"]["Service"] == "printerfacts.service"
    service = c["services"]["printerfacts"]
    assert service["wants"] == ["printerfacts-metrics.socket"]
    assert service["after"] == ["printerfacts.socket", "printerfacts-metrics.socket"]
    # nginx's user alone is trusted to say who the client is, then the operator's flags.
    assert service["serviceConfig"]["ExecStart"].endswith(
        "/bin/printerfacts --trust-forwarded uid:nginx --threads 2 --log-format json")
    upstreams = c["nginx"]["upstreams"]
    assert upstreams["printerfacts"]["servers"] == {"unix:/run/printerfacts/http.sock": {}}
    # nginx must close idle upstream connections before printerfacts' 60 s --idle-timeout does.
    assert "keepalive_timeout 50s;" in upstreams["printerfacts"]["extraConfig"]
    assert "keepalive_timeout 50s;" in upstreams["printerfacts_metrics"]["extraConfig"]
    vhost = c["nginx"]["virtualHosts"]["facts.example.org"]
    assert vhost["enableACME"] is True and vhost["forceSSL"] is True
    assert vhost["locations"]["= /metrics"] == {"return": "404"}, "metrics never on the public host"
    proxy = vhost["locations"]["/"]
    assert proxy["proxyPass"] == "http://printerfacts"
    assert "proxy_http_version 1.1;" in proxy["extraConfig"]
    assert 'proxy_set_header Connection "";' in proxy["extraConfig"]
    # One request ID in both logs: nginx's, passed on, and in a log_format nginx writes.
    assert "proxy_set_header X-Request-ID $request_id;" in proxy["extraConfig"]
    assert "access_log /var/log/nginx/printerfacts.access.log printerfacts_rid;" in proxy["extraConfig"]
    assert "log_format printerfacts_rid" in c["nginx"]["commonHttpConfig"]
    assert "rid=$request_id" in c["nginx"]["commonHttpConfig"]
    local = c["nginx"]["virtualHosts"]["printerfacts-metrics"]
    assert local["listen"] == [{"addr": "127.0.0.1", "port": 9113}]


def test_the_seed_modules_sock_path_is_accepted_with_a_warning(evaluated):
    c = evaluated["renamed"]
    assert c["socketPath"] == "/run/pf/legacy.sock"
    assert c["sockets"]["printerfacts"]["socketConfig"]["ListenStream"] == "/run/pf/legacy.sock"
    assert any("sockPath" in w and "socketPath" in w for w in c["warnings"]), c["warnings"]


def test_disabled_sets_nothing(evaluated):
    c = evaluated["disabled"]
    assert c["sockets"] == {} and c["services"] == {} and c["nginx"]["enable"] is False


def test_the_package_source_leaves_build_trees_out(nix_lib):
    stand_ins = "{ mkDerivation = a: a; }"
    drv = (f"(import {NIXOS}/package.nix {{ lib = import {nix_lib}; stdenv = {stand_ins}; cmake = 1; "
           "ninja = 1; pkg-config = 1; boost = 1; systemd = 1; liburing = 1; cli11 = 1; tomlplusplus = 1; "
           "spdlog = 1; fmt = 1; "
           "prometheus-cpp = 1; gtest = 1; })")
    verdicts = nix_eval(
        f"let src = {drv}.src; keep = p: t: src.filter (toString {ROOT} + p) t; in {{"
        ' cmakelists = keep "/CMakeLists.txt" "regular"; main = keep "/src/exe/main.cpp" "regular";'
        ' units = keep "/deploy/systemd" "directory"; build = keep "/build" "directory";'
        ' git = keep "/.git" "directory";'
        ' result = keep "/result" "symlink"; swap = keep "/src/.main.cpp.swp" "regular"; }')
    assert verdicts == {"cmakelists": True, "main": True, "units": True, "build": False,
                        "git": False, "result": False, "swap": False}, verdicts
    # The version is debian/changelog's, where the Debian package and the binary read it too.
    assert nix_eval(f"{drv}.version") == changelog_version()


def test_install_into_a_prefix_needs_no_privilege():
    """`cmake --install` with a prefix, as a user who cannot write /lib or /etc: every file lands
    under the prefix (the Nix build does exactly this, with $out)."""
    build = os.path.dirname(BINARY)
    assert os.path.exists(os.path.join(build, "cmake_install.cmake")), build
    top = tempfile.mkdtemp(prefix="pf-install-", dir="/tmp")  # a directory nobody can enter
    os.chmod(top, 0o755)
    prefix = pathlib.Path(top) / "prefix"
    prefix.mkdir()
    os.chown(prefix, 65534, 65534)
    # cmake --install records what it installed in the build tree; let the user write that one file.
    manifest = os.path.join(build, "install_manifest.txt")
    open(manifest, "a").close()
    os.chmod(manifest, 0o666)
    r = subprocess.run(["runuser", "-u", "nobody", "--", "cmake", "--install", build, "--prefix", str(prefix)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    installed = open(manifest).read().split()
    assert installed and all(p.startswith(str(prefix) + "/") for p in installed), installed
    for relative in ["bin/printerfacts", "lib/systemd/system/printerfacts.socket",
                     "lib/systemd/system/printerfacts.service", "etc/printerfacts/printerfacts.toml",
                     "etc/nginx/sites-available/printerfacts", "share/man/man1/printerfacts.1.gz"]:
        assert (prefix / relative).exists(), relative
    shutil.rmtree(top)
