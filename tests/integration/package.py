"""The project's Debian package, built the Debian way (debhelper, scripts/package) from the
working tree, once per tree: every test that installs it (test_debian_package, test_systemd,
test_package_upgrade, test_kubernetes) shares one build, and concurrent tests wait for it."""

import contextlib
import email.utils
import fcntl
import glob
import hashlib
import os
import shutil
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.environ.get("PRINTERFACTS_PACKAGE_DIR", os.path.join(ROOT, "build", "deb-test"))


def _tree_key():
    """A hash of what scripts/package copies: the tracked and the new unignored files."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    h = hashlib.sha256()
    for name in sorted(n for n in names if n):
        path = os.path.join(ROOT.encode(), name)
        if os.path.isfile(path):
            h.update(name + b"\0")
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _built(d, version):
    [deb] = glob.glob(os.path.join(d, f"printerfacts_{version}_*.deb"))
    return deb


def build_deb():
    """The package of the working tree (scripts/package --no-check: the suite runs the unit
    tests itself); its path. Built once per tree and kept in OUT; the first caller builds."""
    with _locked():
        d = os.path.join(OUT, _tree_key())
        if not os.path.exists(os.path.join(d, ".done")):
            for old in glob.glob(os.path.join(OUT, "*")):  # other trees' builds are stale
                if os.path.isdir(old):
                    shutil.rmtree(old, ignore_errors=True)
            r = subprocess.run([os.path.join(ROOT, "scripts", "package"), "--no-check", d],
                               capture_output=True, text=True, timeout=1200)
            assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-5000:]
            open(os.path.join(d, ".done"), "w").close()
        return _built(d, changelog_version())


def changelog_version(path=os.path.join(ROOT, "debian", "changelog")):
    """The version of the newest entry of a debian/changelog."""
    with open(path) as f:
        first = f.readline()
    return first.split("(", 1)[1].split(")", 1)[0]


def build_next(version):
    """The same tree packaged again as `version`, a newer entry in its debian/changelog: the
    package an upgrade installs. Rebuilt in the first build's build directory (dpkg-buildpackage
    -nc), so only the file that names the version is compiled again."""
    base = build_deb()
    d = os.path.dirname(base)
    with _locked():
        done = os.path.join(d, f".done-{version}")
        if not os.path.exists(done):
            src = os.path.join(d, "src")
            changelog = os.path.join(src, "debian", "changelog")
            with open(changelog) as f:
                old = f.read()
            entry = (f"printerfacts ({version}) unstable; urgency=medium\n\n"
                     f"  * The same tree as {changelog_version(changelog)}, rebuilt: the upgrade under test.\n\n"
                     f" -- printerfacts maintainers <maintainers@printerfacts.invalid>  "
                     f"{email.utils.formatdate(usegmt=False)}\n\n")
            with open(changelog, "w") as f:
                f.write(entry + old)
            # debhelper's stamps say the build is done: without them it runs again, in the kept
            # build directory.
            for stale in ["debhelper-build-stamp", ".debhelper", "printerfacts", "printerfacts-dbgsym",
                          "files", *map(os.path.basename, glob.glob(os.path.join(src, "debian", "*.substvars"))),
                          *map(os.path.basename, glob.glob(os.path.join(src, "debian", "*.debhelper.log")))]:
                path = os.path.join(src, "debian", stale)
                if os.path.isdir(path):
                    shutil.rmtree(path)
                elif os.path.exists(path):
                    os.unlink(path)
            env = dict(os.environ, DEB_BUILD_OPTIONS=f"parallel={os.cpu_count()} nocheck",
                       DEB_BUILD_PROFILES="nocheck")
            r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b", "-nc"], cwd=src, env=env,
                               capture_output=True, text=True, timeout=1200)
            assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-5000:]
            open(done, "w").close()
        return _built(d, version)
