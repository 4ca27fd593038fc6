"""A real Prometheus server scrapes printerfacts: directly over the TCP metrics listener, and
through nginx's loopback-only server to the metrics Unix socket."""

import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import curl
from nginx import Nginx, free_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


@pytest.fixture
def stack(start, workdir):
    server = start("--listen", f"unix:{workdir}/http.sock", "--socket-group", "www-data",
                   "--metrics-listen", "tcp:127.0.0.1:0",
                   "--metrics-listen", f"unix:{workdir}/metrics.sock", "--metrics-socket-group", "www-data")
    nginx = Nginx(workdir)
    yield server, nginx
    nginx.stop()


def query(port, promql):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


def test_metrics_pass_promtool(stack):
    server, nginx = stack
    curl(nginx.url("/fact"))
    text = curl(f"http://127.0.0.1:{server.tcp_port()}/metrics").stdout
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for family in ["printerfacts_http_requests_total", "printerfacts_http_request_duration_seconds_bucket",
                   "printerfacts_http_requests_in_flight", "printerfacts_connections_accepted_total",
                   "printerfacts_connections_open", "printerfacts_http_response_bytes_total",
                   "printerfacts_stale_sockets_removed_total", "printerfacts_peer_credential_rejections_total",
                   "printerfacts_build_info", "process_cpu_seconds_total", "process_resident_memory_bytes",
                   "process_open_fds", "process_start_time_seconds"]:
        assert family in text, family


def test_every_refusal_reason_exported_is_explained_in_its_help_and_the_docs(stack):
    """The reasons are listed by hand in the HELP text and in docs/observability.md's metrics
    table, beside the server's own list (kRefusalLabels): a reason added there and not here
    fails this."""
    server, _ = stack
    text = curl(f"http://127.0.0.1:{server.tcp_port()}/metrics").stdout
    reasons = set(re.findall(r'^printerfacts_connections_refused_total\{[^}]*reason="([a-z_]+)"', text, re.M))
    assert {"limit", "uid_quota", "proxy_missing"} <= reasons, reasons
    help_line = re.search(r"^# HELP printerfacts_connections_refused_total (.*)$", text, re.M).group(1)
    row = next(line for line in open(os.path.join(ROOT, "docs", "observability.md"), encoding="utf-8")
               if line.startswith("| `printerfacts_connections_refused_total`"))
    for reason in reasons:
        assert re.search(rf"\b{reason}\b", help_line), (reason, help_line)
        assert f"`{reason}`" in row or f'"{reason}"' in row, (reason, row)


def test_metrics_are_not_public(stack):
    server, nginx = stack
    assert curl("-o", "/dev/null", "-w", "%{http_code}", nginx.url("/metrics")).stdout == "404"
    # The public socket itself does not serve them either (no --metrics-on-main).
    r = curl("-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", os.path.join(server.workdir, "http.sock"),
             "http://x/metrics")
    assert r.stdout == "404"
    # The metrics socket serves nothing but metrics and health.
    r = curl("-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", os.path.join(server.workdir, "metrics.sock"),
             "http://x/fact")
    assert r.stdout == "404"


def test_prometheus_scrapes_both_ways_and_counts_every_request(stack, workdir):
    server, nginx = stack
    assert os.path.exists(PROMETHEUS), "prometheus is not installed (scripts/install-deps --test installs it)"
    prom_port = free_port()
    config = os.path.join(workdir, "prometheus.yml")
    with open(config, "w") as f:
        f.write(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: printerfacts-direct
    static_configs:
      - targets: ['127.0.0.1:{server.tcp_port()}']
  - job_name: printerfacts-via-nginx
    static_configs:
      - targets: ['127.0.0.1:{nginx.metrics_port}']
""")
    prom = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir}/prom-data",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "prometheus.log"), "w"))
    try:
        wait_for(lambda: curl(f"http://127.0.0.1:{prom_port}/-/ready", check=False).returncode == 0, 60,
                 "prometheus to be ready")
        for job in ["printerfacts-direct", "printerfacts-via-nginx"]:
            wait_for(lambda: [r for r in query(prom_port, f'up{{job="{job}"}}') if r["value"][1] == "1"], 60,
                     f"up == 1 for {job}")

        def fact_count():
            result = query(prom_port, 'max by (job) (sum by (job) (printerfacts_http_requests_total{route="fact"}))')
            return {r["metric"]["job"]: float(r["value"][1]) for r in result}

        before = fact_count()
        sent = 37
        for _ in range(sent):
            assert curl(nginx.url("/fact")).stdout.endswith("\n")
        expected = {job: before.get(job, 0.0) + sent for job in ["printerfacts-direct", "printerfacts-via-nginx"]}
        wait_for(lambda: fact_count() == expected, 60, f"the counter to rise by {sent} in both jobs")
    finally:
        prom.terminate()
        prom.wait(timeout=20)


DASHBOARD = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "grafana", "printerfacts.json")
RULES = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "prometheus", "printerfacts.rules.yml")
RULE_TESTS = os.path.join(os.path.dirname(__file__), "..", "prometheus", "printerfacts.rules.test.yml")


def assert_exported(exprs, exposed):
    """Every printerfacts_ or process_ metric named in `exprs` is in the scrape `exposed`."""
    for expr in exprs:
        for name in __import__("re").findall(r"\b((?:printerfacts|process)_[a-z_]+)", expr):
            assert f"\n{name}" in "\n" + exposed or f"\n{name}{{" in "\n" + exposed, (name, expr)


def test_the_alert_rules_pass_their_promtool_tests_and_use_exported_metrics(stack):
    """deploy/prometheus/printerfacts.rules.yml: valid (promtool check rules), each alert firing
    on what it should and quiet otherwise (promtool test rules, tests/prometheus/), and naming
    only metrics a real server exports."""
    server, nginx = stack
    r = subprocess.run([PROMTOOL, "check", "rules", RULES], capture_output=True, text=True)
    assert r.returncode == 0 and "SUCCESS: 9 rules found" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([PROMTOOL, "test", "rules", os.path.basename(RULE_TESTS)],
                       cwd=os.path.dirname(RULE_TESTS), capture_output=True, text=True)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    curl(nginx.url("/fact"))
    exposed = curl(f"http://127.0.0.1:{server.tcp_port()}/metrics").stdout
    import yaml
    with open(RULES) as f:
        rules = yaml.safe_load(f)
    assert_exported([rule["expr"] for g in rules["groups"] for rule in g["rules"]], exposed)


def test_grafana_dashboard_queries_are_valid_promql_on_real_metrics(stack, workdir):
    server, nginx = stack
    curl(nginx.url("/fact"))
    exposed = curl(f"http://127.0.0.1:{server.tcp_port()}/metrics").stdout
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 8
    # Every metric a panel queries is one the service really exports; and the panels the issue
    # of the operator's view asked for are there.
    assert_exported(exprs, exposed)
    for name in ["printerfacts_listen_queue_pending", "printerfacts_reloads_total",
                 "printerfacts_forwarded_headers_ignored_total", "printerfacts_socket_recreated_total"]:
        assert any(name in e for e in exprs), name
    # Every expression parses as PromQL once Grafana's variables are filled in.
    rules = os.path.join(workdir, "dashboard-rules.yml")
    with open(rules, "w") as f:
        f.write("groups:\n  - name: dashboard\n    rules:\n")
        for i, expr in enumerate(exprs):
            concrete = expr.replace("$__rate_interval", "1m").replace("$job", ".*").replace("$instance", ".*")
            f.write(f"      - record: dashboard:expr{i}\n        expr: {json.dumps(concrete)}\n")
    r = subprocess.run([PROMTOOL, "check", "rules", rules], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
