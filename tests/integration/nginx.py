"""Runs Debian's nginx with the project's site configuration, rewritten to a test directory."""

import os
import socket
import subprocess
import time

SITE = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "nginx", "printerfacts.conf")
NGINX = "/usr/sbin/nginx"


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Nginx:
    """nginx whose master runs as root and whose workers run as `user` (www-data by default),
    with the shipped site config: its socket paths point into `workdir` and its ports are free
    ones."""

    def __init__(self, workdir, site_text=None, user="www-data", run_dir=None):
        assert os.path.exists(NGINX), "nginx is not installed (scripts/install-deps --test installs it)"
        self.workdir = workdir
        self.port = free_port()
        self.metrics_port = free_port()
        run_dir = run_dir or workdir
        text = site_text if site_text is not None else open(SITE).read()
        text = (text.replace("/run/printerfacts/", run_dir.rstrip("/") + "/")
                    .replace("/var/log/nginx/", workdir + "/")
                    .replace("listen 80;", f"listen 127.0.0.1:{self.port};")
                    .replace("listen [::]:80;", "")
                    .replace("listen 127.0.0.1:9113;", f"listen 127.0.0.1:{self.metrics_port};"))
        self.site = os.path.join(workdir, "site.conf")
        with open(self.site, "w") as f:
            f.write(text)
        self.error_log = os.path.join(workdir, "printerfacts.error.log")
        self.conf = os.path.join(workdir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(f"""
user {user};
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-main.error.log;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    access_log off;
    include {self.site};
}}
""")
        check = subprocess.run([NGINX, "-t", "-q", "-c", self.conf, "-e", f"{workdir}/nginx-main.error.log"],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([NGINX, "-c", self.conf, "-e", f"{workdir}/nginx-main.error.log"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nginx did not start")

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def errors(self):
        try:
            with open(self.error_log) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
