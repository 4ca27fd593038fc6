"""The Debian package: built with debhelper (scripts/package), clean under lintian, installed with dpkg, run as its
systemd unit would run it, and reached through the nginx site it installs. This test changes
the machine (a package, a system user, an nginx site) and undoes it all at the end."""

import glob
import os
import re
import shlex
import shutil
import subprocess
import time

import pytest

from conftest import curl
from package import build_deb, changelog_version



def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def deb():
    return build_deb()


def test_package_name_contents_and_lintian(deb):
    assert os.path.basename(deb) == f"printerfacts_{changelog_version()}_amd64.deb"
    listing = run("dpkg-deb", "-c", deb).stdout
    for path in ["./usr/bin/printerfacts", "./usr/share/man/man1/printerfacts.1.gz",
                 "./lib/systemd/system/printerfacts.socket", "./lib/systemd/system/printerfacts.service",
                 "./lib/systemd/system/printerfacts-standalone.service",
                 "./lib/systemd/system/printerfacts@.service", "./etc/nginx/sites-available/printerfacts",
                 "./etc/default/printerfacts", "./etc/printerfacts/printerfacts.toml",
                 "./usr/share/doc/printerfacts/copyright", "./usr/share/doc/printerfacts/changelog.gz",
                 "./usr/share/doc/printerfacts/examples/printerfacts.cfg",
                 "./usr/share/doc/printerfacts/examples/printerfacts-stream.conf",
                 "./usr/share/printerfacts/printerfacts.rules.yml",
                 "./usr/share/printerfacts/printerfacts.json",
                 "./etc/logrotate.d/printerfacts"]:
        assert path in listing, path
    # Every file under /etc is a conffile: dpkg keeps an administrator's changes.
    conffiles = run("dpkg-deb", "--info", deb, "conffiles").stdout.split()
    etc = sorted(line.split()[-1][1:] for line in listing.splitlines()
                 if line.split()[-1].startswith("./etc/") and not line.endswith("/"))
    assert sorted(conffiles) == etc, (conffiles, etc)
    # The source package beside it (dpkg-buildpackage -us -uc builds both), and lintian clean
    # on both: no error and no warning (informational tags are listed, not failed).
    changes = deb[:-len(".deb")] + ".changes"
    assert os.path.exists(changes) and glob.glob(os.path.join(os.path.dirname(deb), "printerfacts_*.dsc"))
    r = run("lintian", "--tag-display-limit", "0", changes)
    print(r.stdout)
    flagged = [line for line in r.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert r.returncode == 0 and not flagged, r.stdout + r.stderr


def unit_exec_start(unit_path, opts):
    """The command line ExecStart= of an installed unit runs, with $PRINTERFACTS_OPTS expanded."""
    text = open(unit_path).read().replace("\\\n", " ")
    line = re.search(r"^ExecStart=(.*)$", text, re.M).group(1)
    # Environment="PRINTERFACTS_ARGS=...": the arguments the unit gives ExecStart= and ExecReload=.
    args = re.search(r'^Environment="PRINTERFACTS_ARGS=([^"]*)"$', text, re.M)
    line = line.replace("$PRINTERFACTS_ARGS", args.group(1) if args else "")
    return shlex.split(line.replace("$PRINTERFACTS_OPTS", opts))


def test_install_run_as_the_unit_would_and_serve_through_the_installed_nginx_site(deb):
    assert os.geteuid() == 0, "installing a package needs root"
    enabled = "/etc/nginx/sites-enabled"
    default_site = os.path.join(enabled, "default")
    had_default = os.path.lexists(default_site)
    ours = os.path.join(enabled, "printerfacts")
    service = nginx = None
    try:
        r = run("dpkg", "-i", deb)
        assert r.returncode == 0, r.stdout + r.stderr
        assert run("getent", "passwd", "printerfacts").returncode == 0, "postinst creates the user"
        assert run("getent", "group", "printerfacts").returncode == 0, "postinst creates the group"
        assert run("/usr/bin/printerfacts", "--version").stdout.startswith("printerfacts ")
        assert run("man", "-w", "printerfacts").returncode == 0

        # As printerfacts-standalone.service would: its RuntimeDirectory, its user, group and
        # supplementary group, its ExecStart with /etc/default/printerfacts.
        os.makedirs("/run/printerfacts", exist_ok=True)
        shutil.chown("/run/printerfacts", "printerfacts", "printerfacts")
        os.chmod("/run/printerfacts", 0o755)
        opts = re.search(r'^PRINTERFACTS_OPTS="(.*)"$', open("/etc/default/printerfacts").read(), re.M).group(1)
        cmd = unit_exec_start("/lib/systemd/system/printerfacts-standalone.service", opts)
        assert cmd[0] == "/usr/bin/printerfacts"
        assert run(*cmd, "--check").returncode == 0
        ids = {name: run("getent", db, name).stdout.split(":")[2]
               for db, name in [("passwd", "printerfacts"), ("group", "www-data")]}
        # setpriv execs in place (unlike runuser), so the signal reaches printerfacts itself.
        service = subprocess.Popen(["setpriv", f"--reuid={ids['printerfacts']}", "--regid=printerfacts",
                                    f"--groups={ids['www-data']}", "--", *cmd],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not os.path.exists("/run/printerfacts/http.sock") and time.monotonic() < deadline:
            time.sleep(0.05)
        st = os.stat("/run/printerfacts/http.sock")
        assert oct(st.st_mode & 0o777) == "0o660"
        assert st.st_gid == int(run("getent", "group", "www-data").stdout.split(":")[2])

        # The installed nginx site, enabled as an administrator would.
        if had_default:
            os.unlink(default_site)
        os.symlink("/etc/nginx/sites-available/printerfacts", ours)
        r = run("nginx", "-t")
        assert r.returncode == 0, r.stderr
        nginx = subprocess.Popen(["nginx", "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if curl("-o", "/dev/null", "http://127.0.0.1/healthz", check=False).returncode == 0:
                break
            time.sleep(0.1)
        r = curl("-i", "http://127.0.0.1/fact")
        assert r.stdout.startswith("HTTP/1.1 200 OK"), r.stdout
        assert r.stdout.endswith("\n")
        assert curl("-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1/metrics").stdout == "404"
        assert "printerfacts_build_info" in curl("http://127.0.0.1:9113/metrics").stdout
    finally:
        if nginx:
            nginx.terminate()
            nginx.wait(timeout=10)
        if service:
            service.terminate()
            service.wait(timeout=15)
        if os.path.lexists(ours):
            os.unlink(ours)
        if had_default and not os.path.lexists(default_site):
            os.symlink("/etc/nginx/sites-available/default", default_site)
        run("dpkg", "--purge", "printerfacts")
        shutil.rmtree("/run/printerfacts", ignore_errors=True)
    assert service.returncode == 0, service.stderr.read().decode()
    assert run("getent", "passwd", "printerfacts").returncode != 0, "purge removes the user"
    assert not os.path.exists("/usr/bin/printerfacts")
