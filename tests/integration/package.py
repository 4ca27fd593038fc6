"""The project's Debian package, built with cpack from the release build."""

import glob
import os
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RELEASE = os.environ.get("PRINTERFACTS_RELEASE_BUILD", os.path.join(ROOT, "build", "release"))


def build_deb(out_dir):
    """Packs the release build into a .deb in `out_dir` (each caller its own: tests that build
    the package at the same time never share cpack's staging tree) and returns its path."""
    assert os.path.exists(os.path.join(RELEASE, "printerfacts")), \
        f"no release build in {RELEASE} (scripts/test builds it)"
    r = subprocess.run(["cpack", "-G", "DEB", "-B", out_dir], cwd=RELEASE, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    [path] = glob.glob(os.path.join(out_dir, "printerfacts_*_*.deb"))
    return path
