"""Scale-out on one machine: three instances behind one nginx upstream; one is killed under load."""

import os
import re
import signal
import subprocess
import time

from conftest import Server, curl
from nginx import Nginx

SCALED = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "nginx", "printerfacts-scaled.conf")


def test_sigkill_one_of_three_instances_under_wrk(workdir):
    servers = [Server(workdir, ["--listen", f"unix:{workdir}/http-{i}.sock", "--socket-group", "www-data",
                                "--threads", "1", "--access-log", "off"]) for i in (1, 2, 3)]
    nginx = Nginx(workdir, site_text=open(SCALED).read())
    try:
        assert curl(nginx.url("/healthz")).stdout == "ok\n"
        load = subprocess.Popen(["wrk", "-t", "1", "-c", "16", "-d", "6s", "--latency", nginx.url("/fact")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(2)
        servers[1].proc.send_signal(signal.SIGKILL)  # no drain, no cleanup: a crash
        servers[1].proc.wait()
        out, _ = load.communicate(timeout=30)
        print(out)
        total = int(re.search(r"(\d+) requests in", out).group(1))
        assert total > 1000, out
        # Documented expectation: none. Requests caught on the dead instance's connections are
        # retried by nginx on another instance (proxy_next_upstream error), so wrk sees neither
        # errors nor non-2xx answers.
        assert "Non-2xx or 3xx responses" not in out, out
        assert "Socket errors" not in out, out
        # nginx keeps serving from the other two.
        for _ in range(10):
            assert curl(nginx.url("/fact")).stdout.endswith("\n")
        assert "http-2.sock" in nginx.errors()  # nginx noticed, and said so in its log
    finally:
        nginx.stop()
        for s in servers:
            s.kill()
