"""The Kubernetes manifest in a real container runtime: Debian's podman 4.3 plays the shipped
Deployment (`podman kube play`) with images built here from the project's own .deb and
Containerfile, no registry involved.

What the test changes in the manifest, and why (each is something podman does not do as a
cluster would; docs/deployment.md lists them): one replica per play, published on a host port
of its own (podman would start both replicas on the same host ports); the socket volume is a
named volume made with group 101 beforehand (podman ignores fsGroup); the sidecar image is a
Debian-built stand-in for nginx-unprivileged (no registry here). Everything else, arguments,
security contexts, probes, the ConfigMap, the lame-duck wrappers, runs as shipped."""

import copy
import json
import os
import shutil
import re
import subprocess
import sys
import tempfile
import time

import pytest
import yaml

import containers
from conftest import wait_until
from containers import NetNs, podman
from package import build_deb, changelog_version

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(ROOT, "deploy", "kubernetes", "printerfacts.yaml")
APP_IMAGE = f"localhost/printerfacts:{changelog_version()}"
SIDECAR_IMAGE = "localhost/printerfacts-test-nginx:1"
NETNS = f"pfk{os.getpid()}"


@pytest.fixture(scope="module")
def netns(tmp_path_factory):
    work = tmp_path_factory.mktemp("images")
    shutil.copy(build_deb(), str(work))
    containers.build(APP_IMAGE, os.path.join(ROOT, "deploy", "kubernetes", "Containerfile"), str(work))
    containers.build(SIDECAR_IMAGE, os.path.join(HERE, "sidecar", "Containerfile"), os.path.join(HERE, "sidecar"))
    ns = NetNs(NETNS)
    yield ns
    ns.delete()


class Pod:
    """One play of the shipped Deployment, published on host port `port` (metrics on port+1000)."""

    def __init__(self, name, port, workdir):
        self.name, self.port, self.pod = name, port, f"{name}-pod-0"
        self.volume = f"{name}-sockets"
        docs = {d["kind"]: d for d in yaml.safe_load_all(open(MANIFEST))}
        deployment = copy.deepcopy(docs["Deployment"])
        deployment["metadata"]["name"] = name
        deployment["spec"]["replicas"] = 1
        spec = deployment["spec"]["template"]["spec"]
        for v in spec["volumes"]:
            if v["name"] == "sockets":
                v.clear()
                v.update({"name": "sockets", "persistentVolumeClaim": {"claimName": self.volume}})
        for c in spec["containers"]:
            if c["name"] == "printerfacts":
                # The shipped manifest names the image of this version.
                assert c["image"] == f"printerfacts:{changelog_version()}", c["image"]
                c["image"] = APP_IMAGE
            else:
                c["image"] = SIDECAR_IMAGE
                for p in c["ports"]:
                    p["hostPort"] = port if p["name"] == "http" else port + 1000
        self.yaml = os.path.join(workdir, f"{name}.yaml")
        with open(self.yaml, "w") as f:
            yaml.safe_dump_all([docs["ConfigMap"], deployment], f)
        podman("volume", "rm", "-f", self.volume, check=False)
        podman("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
               "--opt", "o=mode=1770,gid=101", self.volume)
        run_in(["podman", "kube", "play", self.yaml])
        wait_until(lambda: self.get("/fact")[0] == 200, f"{name} to serve", timeout=120, every=0.1)

    def container(self, which):
        return f"{self.pod}-{which}"

    def get(self, path, port=None):
        r = run_in(["curl", "-sS", "-o", "/dev/stdout", "-w", "\n%{http_code}", "--max-time", "5",
                    f"http://127.0.0.1:{port or self.port}{path}"], check=False)
        body, _, code = r.stdout.rpartition("\n")
        return int(code or 0), body

    def exit_code(self, which):
        return int(podman("inspect", "--format", "{{.State.ExitCode}}", self.container(which)).stdout)

    def down(self):
        run_in(["podman", "kube", "down", self.yaml], check=False)
        podman("volume", "rm", "-f", self.volume, check=False)


def run_in(cmd, check=True, timeout=300):
    """Runs a command in the pods' network namespace. nsenter, not `ip netns exec`: that one
    remounts /sys, which hides the cgroup hierarchies podman needs."""
    r = subprocess.run(["nsenter", f"--net=/run/netns/{NETNS}", *cmd], capture_output=True, text=True,
                       timeout=timeout, env=containers.env())
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="pf-k8s-")
    yield d
    subprocess.run(["rm", "-rf", d])


def test_a_fact_through_the_sidecar_from_a_process_with_no_port(netns, workdir):
    pod = Pod("pfa", 18080, workdir)
    try:
        status, body = pod.get("/fact")
        assert status == 200 and body.endswith(".\n")
        assert pod.get("/metrics")[0] == 404, "metrics never through the public port"
        status, body = pod.get("/metrics", port=pod.port + 1000)
        assert status == 200 and "printerfacts_build_info" in body
        app = pod.container("printerfacts")
        # podman's default seccomp profile (containers-common's seccomp.json: no io_uring calls,
        # ENOSYS for what it does not list) refuses io_uring_setup, as most runtimes' do: the
        # server runs on its epoll loop and says why once at start.
        said = podman("logs", app)
        said = said.stdout + said.stderr
        assert 'printerfacts_io_backend{backend="epoll"} 1' in body, body
        assert "using epoll: io_uring_setup(2) is not available (ENOSYS)" in said, said[-2000:]
        listing = podman("exec", app, "stat", "-c", "%a %u:%g %F", "/run/printerfacts/http.sock").stdout.strip()
        assert listing == "660 10001:101 socket", listing
        assert podman("exec", app, "id", "-u").stdout.strip() == "10001"
        # Only nginx has ports; printerfacts has no listener but its Unix sockets.
        sockets = podman("exec", app, "cat", "/proc/net/tcp", "/proc/net/tcp6").stdout
        listening = [l for l in sockets.splitlines()[1:] if l.split()[3:4] == ["0A"]]
        ports = {int(l.split()[1].rsplit(":", 1)[1], 16) for l in listening}
        assert ports == {8080, 9113}, ports  # the pod's network namespace: nginx's two ports
        assert "--shutdown-delay=5s" in podman("inspect", "--format", "{{json .Config.Cmd}}", app).stdout
        # printerfacts created its socket in the pod's own namespace: its listen queue is visible.
        assert 'printerfacts_listen_queue_backlog{listener="unix:/run/printerfacts/http.sock"}' in body
        # One request ID in the sidecar's log and in printerfacts' (JSON), with the client nginx
        # saw, believed because the sidecar runs as uid 101 (--trust-forwarded=uid:101).
        head = run_in(["curl", "-sS", "-i", "-H", "X-Forwarded-For: 6.6.6.6", "--max-time", "5",
                       f"http://127.0.0.1:{pod.port}/fact?k8s-rid"]).stdout
        request_id = re.search(r"^X-Request-Id: (\S+?)\r?$", head, re.M).group(1)  # text mode: no CR

        def logged():
            app_out = podman("logs", app).stdout
            nginx_out = podman("logs", pod.container("nginx"))
            seen["app"], seen["nginx"] = app_out[-2000:], (nginx_out.stdout + nginx_out.stderr)[-2000:]
            app_log = [json.loads(l) for l in app_out.splitlines() if l.startswith("{") and "k8s-rid" in l]
            sidecar_log = [l for l in nginx_out.stdout.splitlines() if "k8s-rid" in l]
            return app_log and sidecar_log and (app_log, sidecar_log)
        seen = {}
        try:
            wait_until(lambda: logged(), "the request in both logs", timeout=30, every=0.1)
        except AssertionError as e:
            raise AssertionError(f"{e}\nprinterfacts:\n{seen['app']}\nnginx:\n{seen['nginx']}") from None
        app_log, sidecar_log = logged()
        assert app_log[0]["request_id"] == request_id, app_log
        assert app_log[0]["client.address"] != "6.6.6.6" and "client.address" in app_log[0], app_log
        assert sidecar_log[0].endswith(f"rid={request_id}"), sidecar_log
    finally:
        pod.down()


def test_the_probes_report_what_they_claim(netns, workdir):
    pod = Pod("pfb", 18090, workdir)
    app, nginx = pod.container("printerfacts"), pod.container("nginx")
    try:
        for c in (app, nginx):
            test = json.loads(podman("inspect", "--format", "{{json .Config.Healthcheck.Test}}", c).stdout)
            assert test[0] == "CMD-SHELL", test  # podman turns liveness probes into health checks
            assert podman("healthcheck", "run", c, check=False).returncode == 0, c
        # A hung printerfacts: its liveness fails, its sidecar's (nginx alone) does not.
        podman("kill", "--signal", "STOP", app)
        try:
            assert podman("healthcheck", "run", app, check=False).returncode != 0
            assert podman("healthcheck", "run", nginx, check=False).returncode == 0
        finally:
            podman("kill", "--signal", "CONT", app)
        wait_until(lambda: podman("healthcheck", "run", app, check=False).returncode == 0, "recovery", timeout=120, every=0.1)
        # Readiness, through nginx: 200 while serving, 503 once printerfacts is leaving.
        assert pod.get("/healthz") == (200, "ok\n")
        stopping = subprocess.Popen(["nsenter", f"--net=/run/netns/{NETNS}", "podman", "stop", "-t", "20", app],
                                    env=containers.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: pod.get("/healthz")[0] == 503, "readiness to fail", timeout=120, every=0.1)
        assert pod.get("/fact")[0] == 200, "a pod that is not ready still serves"
        stopping.wait(timeout=60)
        assert pod.exit_code("printerfacts") == 0
    finally:
        pod.down()


def test_replacing_the_pod_under_load_loses_no_request(netns, workdir):
    """A rolling update's steps, in the order a cluster takes them: the new pod starts and
    becomes ready; the old one gets SIGTERM while traffic may still reach it, and leaves the
    endpoints only once its readiness fails. The client is service_client.py: a stand-in for the
    Service (podman has none), following readiness as the endpoints controller does."""
    old = Pod("pfold", 18100, workdir)
    stop_file = os.path.join(workdir, "stop")
    client = subprocess.Popen(["nsenter", f"--net=/run/netns/{NETNS}", sys.executable,
                               os.path.join(HERE, "service_client.py"), "--stop", stop_file, "18100", "18110"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    new = None
    try:
        time.sleep(1)
        new = Pod("pfnew", 18110, workdir)
        time.sleep(1)  # both pods serve
        # As the kubelet stops a pod: SIGTERM to every container, the grace period to finish.
        run_in(["podman", "stop", "-t", "20", old.container("nginx"), old.container("printerfacts")])
        time.sleep(1)
        assert old.exit_code("printerfacts") == 0 and old.exit_code("nginx") == 0
        logs = podman("logs", old.container("printerfacts")).stderr + podman("logs", old.container("printerfacts")).stdout
        assert "/healthz answering 503" in logs, logs[-2000:]
    finally:
        open(stop_file, "w").close()
        out, err = client.communicate(timeout=60)
        old.down()
        if new:
            new.down()
    assert out, err
    summary = json.loads(out)
    print(summary["served"], len(summary["failures"]), summary["failures"][:3])
    assert summary["failures"] == [], summary["failures"][:10]
    assert summary["served"]["18100"] > 20 and summary["served"]["18110"] > 20, summary["served"]
