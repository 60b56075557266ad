#!/usr/bin/python3
"""zdm-proxy with two worker threads and several concurrent python-driver clients.

Usage: /usr/bin/python3 test_proxy_workers.py [BUILD_DIR]

Starts origin and target (2 nodes each) and one proxy with proxy_worker_threads: 2 and
read_mode DUAL_ASYNC_ON_SECONDARY, then six driver Clusters (each a control connection and a
pool connection: twelve client connections, dealt to both workers) write and read concurrently
from six threads, 64 requests in flight each (prepared INSERT, SELECT, BATCH; the statements and
so the prepared cache are shared), while a seventh thread scrapes /metrics. Asserts:
- every request succeeds and every read returns what its client wrote;
- both clusters hold every row; the proxy's metrics count every write once;
- SIGTERM with clients still connected drains them and stops the proxy with exit code 0, and
  no process wrote a sanitizer report.
Run against a ThreadSanitizer build (tests/sanitize/run) it is the proxy's multi-worker test.
Addresses: ZDM_TEST_NET (default 127.20) .21.1 (proxy), .22.1-2 (origin), .23.1-2 (target).
Processes started here are stopped by pid at the end.
"""
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build")
TESTCLUSTER = os.path.join(BUILD, "testcluster", "zdm-testcluster")
PROXY = os.path.join(BUILD, "proxy", "zdm-proxy")
NET = os.environ.get("ZDM_TEST_NET", "127.20")
PROXY_IP = f"{NET}.21.1"
ORIGIN = [f"{NET}.22.1", f"{NET}.22.2"]
TARGET = [f"{NET}.23.1", f"{NET}.23.2"]
CQL_PORT, PROXY_PORT, METRICS_PORT = 19043, 19042, 19001
CLIENTS, IN_FLIGHT, ROWS_PER_CLIENT = 6, 64, 300

sys.path.insert(0, HERE)
from harness import Checks, DriverLogCollector, wait_port  # noqa: E402

procs = []
check = Checks()
failures = check.failures
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "WARNING: ThreadSanitizer", "runtime error:",
                   "ERROR: LeakSanitizer")


def metric_sum(prefix, label=""):
    with urllib.request.urlopen(f"http://{PROXY_IP}:{METRICS_PORT}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(prefix) and label in line)


def client(n, errors, done):
    """One driver Cluster: writes ROWS_PER_CLIENT rows (k = n) with IN_FLIGHT requests in flight,
    reads them back the same way, and one BATCH; appends what went wrong to `errors`."""
    from cassandra.cluster import Cluster
    from cassandra.concurrent import execute_concurrent_with_args
    from cassandra.policies import RoundRobinPolicy
    from cassandra.query import BatchStatement

    cluster = Cluster(contact_points=[PROXY_IP], port=PROXY_PORT,
                      load_balancing_policy=RoundRobinPolicy())
    try:
        session = cluster.connect()
        ins = session.prepare("INSERT INTO zdm_w.kv (k, c, v) VALUES (?, ?, ?)")
        sel = session.prepare("SELECT v FROM zdm_w.kv WHERE k = ? AND c = ?")
        args = [(n, c, f"client{n}-row{c}") for c in range(ROWS_PER_CLIENT)]
        for ok, result in execute_concurrent_with_args(session, ins, args, concurrency=IN_FLIGHT,
                                                       raise_on_first_error=False):
            if not ok:
                errors.append(f"client {n}: INSERT failed: {result}")
        got = execute_concurrent_with_args(session, sel, [(n, c) for c in range(ROWS_PER_CLIENT)],
                                           concurrency=IN_FLIGHT, raise_on_first_error=False)
        for c, (ok, result) in enumerate(got):
            value = result.one().v if ok and result else None
            if value != f"client{n}-row{c}":
                errors.append(f"client {n}: row {c} read back as {value!r} ({result if not ok else ''})")
        batch = BatchStatement()
        for c in range(ROWS_PER_CLIENT, ROWS_PER_CLIENT + 5):
            batch.add(ins, (n, c, f"client{n}-batch{c}"))
        session.execute(batch)
    except Exception as e:  # noqa: BLE001 - reported as a failure
        errors.append(f"client {n}: {e!r}")
    finally:
        cluster.shutdown()
        done.set()


def main():
    tmp = tempfile.mkdtemp(prefix="zdm-workers-test-")
    print(f"logs in {tmp}", flush=True)
    for name, nodes in (("origin", ORIGIN), ("target", TARGET)):
        log = open(os.path.join(tmp, f"{name}.log"), "w")
        procs.append(subprocess.Popen([TESTCLUSTER, "--cluster-name", name, "--nodes", ",".join(nodes),
                                       "--port", str(CQL_PORT)], stdout=log, stderr=log))
    for ip in ORIGIN + TARGET:
        assert wait_port(ip, CQL_PORT, timeout=60), f"test cluster {ip} did not start"
    config = os.path.join(tmp, "zdm.yml")
    with open(config, "w") as f:
        f.write(f"""origin_contact_points: {",".join(ORIGIN)}
origin_port: {CQL_PORT}
target_contact_points: {",".join(TARGET)}
target_port: {CQL_PORT}
proxy_listen_address: {PROXY_IP}
proxy_listen_port: {PROXY_PORT}
metrics_address: {PROXY_IP}
metrics_port: {METRICS_PORT}
proxy_topology_addresses: {PROXY_IP}
proxy_topology_index: 0
proxy_worker_threads: 2
read_mode: DUAL_ASYNC_ON_SECONDARY
""")
    proxy_log_path = os.path.join(tmp, "proxy.log")
    proxy = subprocess.Popen([PROXY, "--config", config], stdout=open(proxy_log_path, "w"),
                             stderr=subprocess.STDOUT)
    procs.append(proxy)
    assert wait_port(PROXY_IP, PROXY_PORT, timeout=60), "proxy did not start listening"

    from cassandra.cluster import Cluster
    from cassandra.policies import RoundRobinPolicy

    driver_errors = DriverLogCollector()
    logging.getLogger("cassandra").addHandler(driver_errors)
    setup = Cluster(contact_points=[PROXY_IP], port=PROXY_PORT, load_balancing_policy=RoundRobinPolicy())
    s = setup.connect()
    s.execute("CREATE KEYSPACE IF NOT EXISTS zdm_w WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE IF NOT EXISTS zdm_w.kv (k int, c int, v text, PRIMARY KEY (k, c))")
    # `setup` stays connected until the proxy has stopped: SIGTERM drains live sessions.
    writes_before = metric_sum("zdm_proxy_request_duration_seconds_count", 'type="writes"')

    errors, dones, threads = [], [threading.Event() for _ in range(CLIENTS)], []
    scrapes = [0]

    def scraper():
        while not all(d.is_set() for d in dones):
            try:
                metric_sum("zdm_proxy_request_duration_seconds_count")
                scrapes[0] += 1
            except Exception as e:  # noqa: BLE001
                errors.append(f"metrics scrape: {e!r}")
            time.sleep(0.05)

    start = time.monotonic()
    for n in range(CLIENTS):
        threads.append(threading.Thread(target=client, args=(n, errors, dones[n])))
    threads.append(threading.Thread(target=scraper))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    elapsed = time.monotonic() - start
    total = CLIENTS * (2 * ROWS_PER_CLIENT + 1)
    check(not errors, f"{CLIENTS} clients x {IN_FLIGHT} in flight: {total} requests in {elapsed:.1f} s, "
                      f"{scrapes[0]} metrics scrapes, no errors ({errors[:3]})")

    writes = metric_sum("zdm_proxy_request_duration_seconds_count", 'type="writes"') - writes_before
    expected_writes = CLIENTS * (ROWS_PER_CLIENT + 1)
    check(writes == expected_writes, f"every write counted once across the workers ({writes:.0f} of {expected_writes})")
    for name, nodes in (("origin", ORIGIN), ("target", TARGET)):
        direct = Cluster(contact_points=nodes, port=CQL_PORT, load_balancing_policy=RoundRobinPolicy())
        rows = direct.connect().execute("SELECT count(*) FROM zdm_w.kv").one()[0]
        direct.shutdown()
        expected = CLIENTS * (ROWS_PER_CLIENT + 5)
        check(rows == expected, f"{name} holds every row written ({rows} of {expected})")
    logging.getLogger("cassandra").removeHandler(driver_errors)
    check(not driver_errors.records, f"no driver warnings or errors ({driver_errors.records[:3]})")

    with open(proxy_log_path) as f:
        log = f.read()
    check('"ProxyWorkerThreads":2' in log, "the proxy runs two workers (its configuration log)")
    proxy.send_signal(signal.SIGTERM)
    try:
        rc = proxy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, f"proxy exits 0 on SIGTERM with a client connected (got {rc})")
    setup.shutdown()
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(timeout=30)
    reports = []
    for name in sorted(os.listdir(tmp)):
        if name.endswith(".log"):
            with open(os.path.join(tmp, name), errors="replace") as f:
                text = f.read()
            reports += [f"{name}: {m}" for m in SANITIZER_MARKS if m in text]
    check(not reports, f"no sanitizer reports in the logs of {tmp} ({reports})")
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # report, then clean up
        import traceback
        traceback.print_exc()
        failures.append(str(exc))
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
    print(check.summary())
    sys.exit(1 if failures else 0)
