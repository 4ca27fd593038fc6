"""Debian's podman, set up as these machines need it, and images built without a registry: a
Debian 12 base made with debootstrap and imported, then the project's own Containerfile.

Two host settings go in a private containers.conf (the system's stays as it is): root here
lacks CAP_SYS_RESOURCE, so podman's default rlimits fail and nproc must stay <= 32768; and this
crun refuses hybrid cgroups, so runc runs the containers. Pods run in a network namespace of
their own, so published ports and podman's firewall rules stay out of the host's."""

import fcntl
import os
import shutil
import subprocess
import tempfile

from machine import CACHE, SUITE, apt_mirror, run

BASE_IMAGE = "localhost/debian:12-slim"
HERE = os.path.dirname(os.path.abspath(__file__))
CONF = os.path.join(CACHE, "containers.conf")


def env():
    os.makedirs(CACHE, exist_ok=True)
    with open(CONF, "w") as f:
        f.write('[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
                '[engine]\nruntime = "runc"\n')
    return {**os.environ, "CONTAINERS_CONF": CONF}


def podman(*args, netns=None, check=True, timeout=600):
    cmd = ["podman", *args]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env())
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def base_image():
    """Debian 12 minbase as an image, made once per machine (podman keeps it)."""
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, "lock-image"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
            return BASE_IMAGE
        tree = tempfile.mkdtemp(prefix="pf-base-", dir=CACHE)
        try:
            run(["debootstrap", "--variant=minbase", SUITE, tree, apt_mirror()], timeout=1200)
            shutil.copy("/etc/resolv.conf", os.path.join(tree, "etc", "resolv.conf"))
            tar = subprocess.Popen(["tar", "-C", tree, "-c", "."], stdout=subprocess.PIPE)
            r = subprocess.run(["podman", "import", "--change", "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                                "-", BASE_IMAGE], stdin=tar.stdout, capture_output=True, text=True, env=env())
            tar.wait()
            assert r.returncode == 0 and tar.returncode == 0, r.stderr
        finally:
            shutil.rmtree(tree, ignore_errors=True)
        return BASE_IMAGE


def build(tag, containerfile, context):
    """`podman build` of a Containerfile FROM the local base, with the host's network for apt."""
    base_image()
    # Docker format: the OCI image format has no HEALTHCHECK.
    podman("build", "--pull=never", "--network", "host", "--format", "docker", "-q", "-f", containerfile,
           "-t", tag, context,
           timeout=1200)
    return tag


class NetNs:
    """A network namespace with only loopback, deleted afterwards."""

    def __init__(self, name):
        self.name = name
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        run(["ip", "netns", "add", name])
        run(["ip", "-n", name, "link", "set", "lo", "up"])

    def run(self, *cmd, **kw):
        return subprocess.run(["ip", "netns", "exec", self.name, *cmd], capture_output=True, text=True, **kw)

    def delete(self):
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)
