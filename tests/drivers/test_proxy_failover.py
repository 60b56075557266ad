#!/usr/bin/python3
"""One node's failure costs only the requests that were in flight on it (issue 19): zdm-proxy
between 3-node origin and target zdm-testcluster clusters with PasswordAuthenticator, the real
DataStax python-driver sending a steady load through it.

usage: test_proxy_failover.py BUILD_DIR [--only NAME[,NAME]]

Address plan (this test's own): origin 127.26.2.1-3, target 127.26.3.1-3 (CQL 9042, each node
with its own prepared statements; fault admins on 127.26.2.1:9180 and 127.26.3.1:9180), proxy
127.26.1.1:9042 (metrics :14001). Scenarios (each under ~500 requests/s of prepared writes and
reads, at most WINDOW in flight):
  target_stop  the target node the client's connection uses is stopped, then started: client-seen
               errors <= the requests in flight at the stop, none 1 s later, each counted once in
               zdm_proxy_failed_writes_total{failed_on="target"}; the client connection stays
               open (no reconnect), its writes reach both clusters through another target node
  origin_stop  the same for origin: reads and writes, counted in failed_{reads,writes}{origin}
  target_down  every target node stopped: PRIMARY_ONLY reads get no error; writes fail at once
               (counted); target back: writes succeed again within 3 s, on the same connection
  assigned     three proxies in the topology (one node assigned to each): the client's target
               node, the one assigned, is stopped: the connection moves to another node of the
               data center; the node started again: it moves back (within 5 s), no error
  stall        the client's target node stops answering requests (heartbeats still answered):
               the requests in flight time out (proxy_request_timeout_ms 3000; the driver's
               4 s), counted once each, and the connection moves to another node: writes
               succeed again within 2 s of the timeouts
  new_target_down  every target node stopped, then a new client connects: refused, naming
               forward_client_credentials_to_origin, while target checks the clients' credentials;
               with origin checking them, it connects, its prepared reads get no error, its
               writes fail at once (counted), the driver's heartbeats keep its connections; target
               back: writes succeed within 3 s and reach both clusters
  drop         2 % of target's answers replaced by a closed connection: at most ~2 % of requests
               fail, counters equal what the client saw
  corrupt      the same with 2 % of target's answers replaced by a frame with a corrupt header
Ends with "N passed, N failed". Processes started here are stopped by pid.
"""
import os
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build")
TESTCLUSTER = os.path.join(BUILD, "testcluster", "zdm-testcluster")
PROXY = os.path.join(BUILD, "proxy", "zdm-proxy")
ORIGIN = ["127.26.2.1", "127.26.2.2", "127.26.2.3"]
TARGET = ["127.26.3.1", "127.26.3.2", "127.26.3.3"]
ADMIN = {"origin": "127.26.2.1:9180", "target": "127.26.3.1:9180"}
PROXY_IP, PORT, METRICS = "127.26.1.1", 9042, 14001
USER = {"origin": ("origin_app", "origin-secret"), "target": ("target_app", "target-secret")}
WINDOW = 16  # requests in flight at most
RATE = 500   # requests per second at most

sys.path.insert(0, HERE)
from harness import Checks, Processes, run_scenarios, http_json, metric_sum, python_session, readiness as ready, wait_port  # noqa: E402

check = Checks()
TMP = tempfile.mkdtemp(prefix="zdm-proxy-failover-")
procs = Processes(TMP)
start, stop = procs.start, procs.stop


def admin(cluster, method, path, body=None):
    return http_json(f"http://{ADMIN[cluster]}{path}", method, body)


def clusters():
    for name, nodes in (("origin", ORIGIN), ("target", TARGET)):
        user, password = USER[name]
        start(name, [TESTCLUSTER, "--cluster-name", name, "--nodes", ",".join(nodes), "--port", str(PORT),
                     "--prepared-per-node", "--admin", ADMIN[name], "--auth", f"{user}:{password}"])
    for ip in ORIGIN + TARGET:
        assert wait_port(ip, PORT), f"node {ip} did not start"


def readiness():
    return ready(f"{PROXY_IP}:{METRICS}")[0]


def proxy(extra="", topology=PROXY_IP):
    stop("proxy")
    path = os.path.join(TMP, "zdm.yml")
    with open(path, "w") as f:
        f.write(f"""origin_contact_points: {",".join(ORIGIN)}
target_contact_points: {",".join(TARGET)}
origin_username: {USER["origin"][0]}
origin_password: {USER["origin"][1]}
target_username: {USER["target"][0]}
target_password: {USER["target"][1]}
proxy_listen_address: {PROXY_IP}
proxy_listen_port: {PORT}
metrics_address: {PROXY_IP}
metrics_port: {METRICS}
proxy_topology_addresses: {topology}
heartbeat_retry_interval_max_ms: 500
proxy_request_timeout_ms: 3000
""" + extra)
    p = start("proxy", [PROXY, "--config", path])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and p.poll() is None:
        if readiness() == 200:
            return p
        time.sleep(0.1)
    raise AssertionError("proxy did not become ready")


def metric(prefix, label=""):
    return metric_sum(f"{PROXY_IP}:{METRICS}", prefix, label)


def session_via(hosts, user, timeout=10, **cluster_options):
    return python_session(hosts, PORT, timeout, USER[user], **cluster_options)


def proxy_session(table="t", timeout=10):
    """A client of the proxy (target's credentials, as ZDM's clients use) and its statements on
    fo.`table` (a table of its own: its statements are prepared on no node yet)."""
    c, s = session_via([PROXY_IP], "target", timeout)
    # Replicated on every node: a stopped node's partitions stay available (with one replica the
    # other nodes answer UNAVAILABLE for them, as Cassandra would).
    s.execute("CREATE KEYSPACE IF NOT EXISTS fo WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 3}")
    s.execute(f"CREATE TABLE IF NOT EXISTS fo.{table} (k int PRIMARY KEY, v text)")
    s.set_keyspace("fo")  # USE: replayed on a replacement connection
    return (c, s, s.prepare(f"INSERT INTO {table} (k, v) VALUES (?, ?)"),
            s.prepare(f"SELECT v FROM {table} WHERE k = ?"))


def used_node(cluster, before):
    """The node of `cluster` whose prepared statements grew since `before` (the client's node)."""
    now = {n["address"]: n["prepared"] for n in admin(cluster, "GET", "/")["nodes"]}
    grown = [a for a, p in now.items() if p > before.get(a, 0)]
    return grown[0] if len(grown) == 1 else None


def prepared_counts(cluster):
    return {n["address"]: n["prepared"] for n in admin(cluster, "GET", "/")["nodes"]}


class Load:
    """Prepared writes (and reads) at most RATE/s, at most WINDOW in flight, for `seconds`;
    records each failure with its time. Bounded in count and time."""

    def __init__(self, s, ins, sel, key0, reads=True):
        self.s, self.ins, self.sel, self.key0, self.reads = s, ins, sel, key0, reads
        self.ok = {"write": 0, "read": 0}
        self.errors = []  # (time, kind, repr)
        self.written = []
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(WINDOW)

    def run(self, seconds):
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline and i < RATE * seconds:
            self.slots.acquire()
            kind = "read" if self.reads and i % 2 else "write"
            k = self.key0 + i
            f = (self.s.execute_async(self.sel, (k - 1,)) if kind == "read"
                 else self.s.execute_async(self.ins, (k, "v")))
            f.add_callbacks(self._done, self._failed, callback_args=(kind, k), errback_args=(kind,))
            i += 1
            time.sleep(1 / RATE)
        for _ in range(WINDOW):  # every request ended
            self.slots.acquire(timeout=15)

    def _done(self, _rows, kind, k):
        with self.lock:
            self.ok[kind] += 1
            if kind == "write":
                self.written.append(k)
        self.slots.release()

    def _failed(self, exc, kind):
        with self.lock:
            self.errors.append((time.monotonic(), kind, repr(exc)))
        self.slots.release()


def counters():
    return {"w_origin": metric("zdm_proxy_failed_writes_total", 'failed_on="origin"'),
            "w_target": metric("zdm_proxy_failed_writes_total", 'failed_on="target"'),
            "w_both": metric("zdm_proxy_failed_writes_total", 'failed_on="both"'),
            "r_origin": metric("zdm_proxy_failed_reads_total", 'cluster="origin"'),
            "r_target": metric("zdm_proxy_failed_reads_total", 'cluster="target"'),
            "client": metric("zdm_proxy_client_errors_total")}


def delta(a, b):
    return {k: round(b[k] - a[k]) for k in a}


def rows_on(cluster, table, keys):
    c, d = session_via(ORIGIN if cluster == "origin" else TARGET, cluster)
    got = {r.k for r in d.execute(f"SELECT k FROM fo.{table}")}
    c.shutdown()
    return len(set(keys) - got)


def node_stop(cluster, key0):
    proxy()
    before = prepared_counts(cluster)
    c, s, ins, sel = proxy_session("stop_" + cluster)
    node = used_node(cluster, before)
    check(node is not None, f"{cluster}: the client's {cluster} node found by its prepared statements ({node})")
    if node is None:
        c.shutdown()
        return
    accepted_before = open(os.path.join(TMP, "proxy.log")).read().count("Accepted connection")
    load = Load(s, ins, sel, key0)
    m0 = counters()
    stopped = {}

    def fault():
        time.sleep(2)
        stopped["at"] = time.monotonic()
        admin(cluster, "POST", f"/nodes/{node}/stop")
        time.sleep(3)
        admin(cluster, "POST", f"/nodes/{node}/start")
        stopped["started"] = time.monotonic()

    t = threading.Thread(target=fault)
    t.start()
    load.run(8)
    t.join()
    m1 = counters()
    d = delta(m0, m1)
    errors = load.errors
    late = [e for e in errors if e[0] > stopped["at"] + 1]
    w_err = sum(1 for e in errors if e[1] == "write")
    r_err = sum(1 for e in errors if e[1] == "read")
    print(f"   {cluster} node {node} stopped for 3 s: {load.ok} answered, {len(errors)} errors "
          f"({w_err} writes, {r_err} reads) {errors[:2]}; counters {d}")
    check(len(errors) <= WINDOW, f"{cluster} node stopped: client-seen errors {len(errors)} <= in flight ({WINDOW})")
    check(not late, f"{cluster} node stopped: no error 1 s after the stop ({len(late)}: {late[:2]})")
    if cluster == "target":
        check(d["w_target"] == w_err and r_err == 0 and d["w_origin"] == d["w_both"] == 0,
              f"failed_writes{{failed_on=\"target\"}} == the {w_err} failed writes the client saw ({d})")
    else:
        check(d["w_origin"] + d["w_both"] == w_err and d["r_origin"] == r_err,
              f"failed_writes/failed_reads on origin == the failures the client saw "
              f"({w_err} writes, {r_err} reads; {d})")
    accepted = open(os.path.join(TMP, "proxy.log")).read().count("Accepted connection")
    check(accepted == accepted_before,
          f"{cluster} node stopped: the client's connections stayed open (new connections: {accepted - accepted_before})")
    check(load.ok["write"] > 1000, f"{cluster} node stopped: the load went on ({load.ok['write']} writes answered)")
    for name in ("origin", "target"):
        missing = rows_on(name, "stop_" + cluster, load.written)
        check(missing == 0, f"{cluster} node stopped: every acknowledged write is on {name} "
                            f"({len(load.written)} rows, {missing} missing)")
    c.shutdown()


def scenario_target_stop():
    node_stop("target", 100000)


def scenario_origin_stop():
    node_stop("origin", 200000)


def seconds_until_written(s, ins, key, limit=10):
    """Seconds until prepared INSERT `ins` of `key` succeeds (tried every 100 ms); None after
    `limit` seconds."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            s.execute(ins, (key, "back"))
            return time.monotonic() - t0
        except Exception:  # noqa: BLE001
            time.sleep(0.1)
    return None


def scenario_target_down():
    proxy()
    c, s, ins, sel = proxy_session()
    for k in range(10):
        s.execute(ins, (300000 + k, "r"))
    m0 = counters()
    for n in TARGET:
        admin("target", "POST", f"/nodes/{n}/stop")
    from cassandra.protocol import ServerError
    read_errors, write_errors, other = 0, 0, []
    t0 = time.monotonic()
    for i in range(200):
        try:
            rows = s.execute(sel, (300000 + i % 10,)).all()
            if len(rows) != 1:
                other.append(f"read got {rows}")
        except Exception as e:  # noqa: BLE001
            read_errors += 1
            other.append(repr(e))
        try:
            s.execute(ins, (301000 + i, "w"))
        except ServerError:
            write_errors += 1
        except Exception as e:  # noqa: BLE001
            other.append(repr(e))
        time.sleep(0.005)
    took = time.monotonic() - t0
    d = delta(m0, counters())
    check(read_errors == 0, f"every target node stopped: 200 PRIMARY_ONLY reads, {read_errors} errors {other[:2]}")
    check(write_errors == 200 and not other,
          f"every target node stopped: 200 writes fail with SERVER_ERROR ({write_errors}, other {other[:2]}) "
          f"in {took:.1f} s")
    check(d["w_target"] == write_errors and d["r_origin"] == 0,
          f"failed_writes{{failed_on=\"target\"}} == {write_errors} ({d})")
    for n in TARGET:
        admin("target", "POST", f"/nodes/{n}/start")
    ok_at = seconds_until_written(s, ins, 302000)
    check(ok_at is not None and ok_at < 3,
          f"target started again: writes succeed on the same connection within 3 s ({ok_at})")
    c.shutdown()


def scenario_new_target_down():
    """A client connecting while every target node is down (both clusters authenticate)."""
    from cassandra.cluster import NoHostAvailable
    from cassandra.protocol import ServerError
    proxy()
    c, s = session_via([PROXY_IP], "target")
    s.execute("CREATE KEYSPACE IF NOT EXISTS fo WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 3}")
    s.execute("CREATE TABLE IF NOT EXISTS fo.newconn (k int PRIMARY KEY, v text)")
    for k in range(10):
        s.execute("INSERT INTO fo.newconn (k, v) VALUES (%s, 'r')", (k,))
    c.shutdown()
    for n in TARGET:
        admin("target", "POST", f"/nodes/{n}/stop")
    try:
        # Clients send target's credentials (forward_client_credentials_to_origin false): only
        # target can check them, so a new connection is refused, saying why.
        refused = None
        try:
            c, s = session_via([PROXY_IP], "target")
            c.shutdown()
        except NoHostAvailable as e:
            refused = repr(e)
        check(refused is not None and "forward_client_credentials_to_origin" in refused,
              f"target down, clients authenticated by target: a new connection is refused naming "
              f"forward_client_credentials_to_origin ({(refused or '')[:300]})")
        # Clients send origin's credentials: origin checks them, the connection starts without
        # target; reads, USE, PREPARE and heartbeats work, writes fail at once (counted). (A
        # proxy starts only once it reached both clusters.)
        for n in TARGET:
            admin("target", "POST", f"/nodes/{n}/start")
        proxy("forward_client_credentials_to_origin: true\n")
        for n in TARGET:
            admin("target", "POST", f"/nodes/{n}/stop")
        log = os.path.join(TMP, "proxy.log")
        m0 = counters()
        t0 = time.monotonic()
        c, s = session_via([PROXY_IP], "origin", idle_heartbeat_interval=1)
        connected = time.monotonic() - t0
        s.set_keyspace("fo")
        sel = s.prepare("SELECT v FROM newconn WHERE k = ?")
        ins = s.prepare("INSERT INTO newconn (k, v) VALUES (?, ?)")
        accepted = open(log).read().count("Accepted connection")
        read_errors, write_errors, other = 0, 0, []
        for i in range(100):
            try:
                if len(s.execute(sel, (i % 10,)).all()) != 1:
                    other.append("a read missed its row")
            except Exception as e:  # noqa: BLE001
                read_errors += 1
                other.append(repr(e))
            if i % 2 == 0:
                try:
                    s.execute(ins, (1000 + i, "w"))
                except ServerError:
                    write_errors += 1
                except Exception as e:  # noqa: BLE001
                    other.append(repr(e))
        time.sleep(3)  # three heartbeats (OPTIONS) on each idle connection of the driver
        d = delta(m0, counters())
        print(f"   new connection with target down: connected in {connected:.2f} s; "
              f"{read_errors} read errors, {write_errors} write errors {other[:2]}; counters {d}")
        check(read_errors == 0 and not other,
              f"target down: a new connection's 100 prepared PRIMARY_ONLY reads, {read_errors} errors {other[:2]}")
        check(write_errors == 50 and d["w_target"] == 50 and d["r_origin"] == 0,
              f"target down: its 50 writes fail with SERVER_ERROR, counted failed_on=target ({write_errors}; {d})")
        again = open(log).read().count("Accepted connection")
        check(again == accepted, f"target down: heartbeats kept the driver's connections ({again - accepted} new)")
    finally:
        for n in TARGET:
            admin("target", "POST", f"/nodes/{n}/start")
    ok_at = seconds_until_written(s, ins, 2000)
    check(ok_at is not None and ok_at < 3,
          f"target started again: the connection reaches it, writes succeed within 3 s ({ok_at})")
    for name in ("origin", "target"):
        missing = rows_on(name, "newconn", [2000])
        check(missing == 0, f"target back: the write is on {name}")
    c.shutdown()


def scenario_assigned():
    proxy(topology=f"{PROXY_IP},127.26.1.2,127.26.1.3")
    c, s, ins, sel = proxy_session("assigned")
    node = TARGET[0]  # proxy 0 of 3, 3 nodes: the first (sorted) is its one node
    log = os.path.join(TMP, "proxy.log")
    mark = len(open(log).read())
    load = Load(s, ins, sel, 500000)
    m0 = counters()
    times = {}

    def fault():
        time.sleep(2)
        times["stop"] = time.monotonic()
        admin("target", "POST", f"/nodes/{node}/stop")
        time.sleep(2)
        admin("target", "POST", f"/nodes/{node}/start")
        times["start"] = time.monotonic()

    t = threading.Thread(target=fault)
    t.start()
    load.run(12)
    t.join()
    d = delta(m0, counters())
    text = open(log).read()[mark:]
    moved = "failed (connection closed); connecting another TARGET node" in text
    back = f"is back on TARGET node {node}:{PORT}" in text
    late = [e for e in load.errors if e[0] > times["stop"] + 1]
    print(f"   assigned node {node} stopped for 2 s: {load.ok} answered, {len(load.errors)} errors; counters {d}")
    check(moved and back, f"the connection left its assigned node {node} when it stopped ({moved}) and came back "
                          f"once it was started again ({back})")
    check(len(load.errors) <= WINDOW and not late,
          f"assigned node stopped and started: {len(load.errors)} errors (<= {WINDOW}), none 1 s after the stop")
    check(d["w_target"] == len(load.errors), f"failed_writes{{failed_on=\"target\"}} == {len(load.errors)} ({d})")
    c.shutdown()


def scenario_stall():
    proxy()
    before = prepared_counts("target")
    c, s, ins, sel = proxy_session("stall", timeout=4)
    node = used_node("target", before)
    load = Load(s, ins, sel, 600000)
    m0 = counters()
    times = {}

    def fault():
        time.sleep(2)
        times["stall"] = time.monotonic()
        admin("target", "POST", f"/nodes/{node}/faults", {"silence": {}})

    t = threading.Thread(target=fault)
    t.start()
    try:
        load.run(12)
    finally:
        t.join()
        admin("target", "DELETE", f"/nodes/{node}/faults")
    d = delta(m0, counters())
    errors = load.errors
    timeouts = [e for e in errors if "OperationTimedOut" in e[2]]
    late = [e for e in errors if e[0] > times["stall"] + 6]
    print("   error times after the stall:", sorted(round(e[0] - times["stall"], 1) for e in errors))
    print(f"   target node {node} silent: {load.ok} answered, {len(errors)} errors ({len(timeouts)} "
          f"client timeouts) {errors[:1]}; counters {d}")
    check(0 < len(errors) <= WINDOW and len(timeouts) == len(errors),
          f"a silent target node: only the requests in flight on it failed ({len(errors)} <= {WINDOW}), "
          "as client timeouts")
    check(not late, f"a silent target node: no error 6 s after the stall began ({len(late)})")
    check(d["w_target"] == len(errors), f"failed_writes{{failed_on=\"target\"}} == the {len(errors)} "
                                        f"timeouts the client saw ({d})")
    log = open(os.path.join(TMP, "proxy.log")).read()
    check(f"Connection to {node}:{PORT} for client" in log and "no answer within proxy_request_timeout_ms" in log,
          "the silent node's connection was replaced")
    check(load.ok["write"] > 1000, f"writes went on on another node ({load.ok['write']} answered)")
    c.shutdown()


def scenario_drop():
    answers_lost("drop", {"drop": {"fraction": 0.02}}, 400000)


def scenario_corrupt():
    answers_lost("corrupt", {"garbage": {"fraction": 0.02, "mode": "header"}}, 450000)


def answers_lost(name, fault, key0):
    """2 % of target's answers replaced by `fault` (a closed connection, a corrupt header): the
    connection to that node fails with what was in flight on it, nothing else."""
    proxy()
    c, s, ins, sel = proxy_session()
    load = Load(s, ins, sel, key0)
    m0 = counters()
    admin("target", "POST", "/faults", fault)
    try:
        load.run(6)
    finally:
        admin("target", "DELETE", "/faults")
    d = delta(m0, counters())
    total = load.ok["write"] + load.ok["read"] + len(load.errors)
    w_err = sum(1 for e in load.errors if e[1] == "write")
    r_err = len(load.errors) - w_err
    share = len(load.errors) / max(1, total)
    print(f"   {name}: 2 % of target's answers: {total} requests, {len(load.errors)} failed "
          f"({w_err} writes, {r_err} reads) {load.errors[:2]}; counters {d}")
    # Each lost answer fails the connection with what else was in flight on it (a few).
    check(share <= 0.05, f"{name}: 2 % of target's answers lost: {share:.1%} of requests failed (at "
                         "most ~2 % plus what was in flight with them)")
    check(d["w_target"] == w_err and r_err == 0,
          f"{name}: failed_writes{{failed_on=\"target\"}} == the {w_err} failed writes the client saw ({d})")
    c.shutdown()


SCENARIOS = [("target_stop", scenario_target_stop), ("origin_stop", scenario_origin_stop),
             ("target_down", scenario_target_down), ("new_target_down", scenario_new_target_down),
             ("assigned", scenario_assigned),
             ("stall", scenario_stall), ("drop", scenario_drop), ("corrupt", scenario_corrupt)]


def main():
    return run_scenarios(SCENARIOS, clusters, check, procs, TMP, sys.argv)


if __name__ == "__main__":
    sys.exit(main())
