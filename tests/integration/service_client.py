"""A stand-in for a Kubernetes Service in front of pods that podman runs (podman kube play has
no Services): it routes requests only to the pods whose readiness, /healthz through the pod's
nginx, answers 200, as the endpoints controller does with the manifest's readinessProbe; and
it sends requests, each on a new connection, round-robin over those pods, counting every
failure. Runs until the file named by --stop exists, then prints a JSON summary.

Usage: service_client.py --stop FILE PORT [PORT...]   (pods published on 127.0.0.1:PORT)"""

import argparse
import http.client
import itertools
import json
import os
import threading
import time


def get(port, path, timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stop", required=True)
    parser.add_argument("--probe-period", type=float, default=0.25)
    parser.add_argument("ports", type=int, nargs="+")
    args = parser.parse_args()

    ready = set()
    lock = threading.Lock()
    served = {p: 0 for p in args.ports}
    failures = []
    done = threading.Event()

    def probe():
        # The readiness probe: a pod joins on 200 and leaves on anything else.
        while not done.is_set():
            for port in args.ports:
                try:
                    ok = get(port, "/healthz", timeout=1)[0] == 200
                except OSError:
                    ok = False
                with lock:
                    (ready.add if ok else ready.discard)(port)
            time.sleep(args.probe_period)

    def load():
        for n in itertools.count():
            if done.is_set():
                return
            with lock:
                endpoints = sorted(ready)
            if not endpoints:
                time.sleep(0.01)
                continue
            port = endpoints[n % len(endpoints)]
            try:
                status, body = get(port, "/fact")
                if status == 200 and body.endswith(b"\n"):
                    with lock:
                        served[port] += 1
                else:
                    failures.append(f"{port}: status {status}")
            except OSError as e:
                failures.append(f"{port}: {e!r}")

    threads = [threading.Thread(target=probe)] + [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    while not os.path.exists(args.stop):
        time.sleep(0.05)
    done.set()
    for t in threads:
        t.join()
    print(json.dumps({"served": served, "failures": failures}))


if __name__ == "__main__":
    main()
