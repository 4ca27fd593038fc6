"""Kubernetes manifests, checked offline as far as Debian's tools allow (the NixOS module is
evaluated in test_nixos.py): kubectl parses the manifests; the sidecar's nginx config
passes nginx -t; the container arguments and probe commands run against the real binary."""

import os
import subprocess

import yaml

from conftest import BINARY, Server
from nginx import NGINX

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
K8S = os.path.join(ROOT, "deploy", "kubernetes", "printerfacts.yaml")


def load_k8s():
    return {d["kind"]: d for d in yaml.safe_load_all(open(K8S))}


def test_kubectl_parses_the_manifests_offline():
    r = subprocess.run(["kubectl", "label", "--local", "-f", K8S, "validated=offline", "-o", "name"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    kinds = sorted(line.split("/")[0] for line in r.stdout.split())
    assert kinds == sorted(["configmap", "deployment.apps", "service", "horizontalpodautoscaler.autoscaling"]), kinds


def test_app_container_has_no_port_and_shares_the_socket_volume():
    docs = load_k8s()
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert "ports" not in containers["printerfacts"]
    for c in containers.values():
        assert {"name": "sockets", "mountPath": "/run/printerfacts"} in c["volumeMounts"]
    assert any(v["name"] == "sockets" and "emptyDir" in v for v in pod["volumes"])
    assert docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == "printerfacts"
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == "http"


def test_container_args_and_probes_work_with_the_real_binary(workdir):
    docs = load_k8s()
    app = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    args = [a.replace("/run/printerfacts/", workdir + "/") for a in app["args"]]
    args = [a.replace("group=101", f"group={os.getgid()}") for a in args]  # this test's own group
    r = subprocess.run([BINARY, "--check", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    server = Server(workdir, args)
    try:
        for probe in ("readinessProbe", "livenessProbe"):
            cmd = [c.replace("/run/printerfacts/", workdir + "/") for c in app[probe]["exec"]["command"]]
            assert cmd[0] == "printerfacts"
            r = subprocess.run([BINARY, *cmd[1:]], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
    finally:
        server.stop()


def test_sidecar_nginx_config_is_valid_and_proxies(workdir):
    conf = load_k8s()["ConfigMap"]["data"]["default.conf"].replace("/run/printerfacts/", workdir + "/")
    conf = conf.replace("listen 8080;", "listen 127.0.0.1:18080;").replace("listen 9113;", "listen 127.0.0.1:19113;")
    main = os.path.join(workdir, "nginx.conf")
    with open(main, "w") as f:
        f.write(f"pid {workdir}/nginx.pid; error_log {workdir}/error.log; events {{}}\n"
                f"http {{ access_log off; client_body_temp_path {workdir}; proxy_temp_path {workdir};\n{conf}\n}}\n")
    r = subprocess.run([NGINX, "-t", "-c", main, "-e", f"{workdir}/error.log"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
