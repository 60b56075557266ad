#!/usr/bin/python3
"""The target can never hurt production (issue 20): zdm-proxy between 3-node origin and target
zdm-testcluster clusters, the real DataStax python-driver writing through it, target disabled at
runtime, stopped, slowed; what target missed journaled and put back with `zdm-data replay`.

usage: test_target_protection.py BUILD_DIR [--only NAME[,NAME]]

Address plan (this test's own): origin 127.29.2.1-3, target 127.29.3.1-3 (CQL 9042; fault admins
on 127.29.2.1:9180 and 127.29.3.1:9180), proxies 127.29.1.1-3:9042 (metrics :14001);
ZDM_TEST_NET=127.N moves it all to 127.N. Scenarios:
  switch    POST /api/v1/target/disable needs the admin token (401 without); while disabled a
            background load gets 0 errors, target receives no QUERY/EXECUTE/BATCH, and the
            divergence counter of the table written sequentially equals its writes exactly;
            enabled again, target receives writes; `zdm-data replay` then leaves origin and
            target identical, rows rewritten after the switch keeping their newer values;
            with primary_cluster TARGET, disable is refused (409)
  isolate   target_failure_mode isolate on 3 proxies under load (prepared writes, unlogged
            batches and reads, a few hundred a second): every target node stopped for OUTAGE
            seconds (ZDM_ISOLATE_OUTAGE_S, default 60): 0 client errors, every proxy's circuit
            opens, every acknowledged write is on origin, each journal holds exactly the writes
            its proxy counted as missed; target back: writes reach it again; each journal
            replayed → `zdm-data validate` finds no difference (rows written again after the
            outage keep their newer values)
  crash     isolate, target answering writes after 3 s with an error: the proxy is killed
            (SIGKILL) once origin applied 50 writes; restarted, it reports them unsettled, and
            replay puts them on target
  slow      isolate with target's writes answered after 3 s (target_write_timeout_ms 400):
            0 client errors, writes answered within ~1 s, journaled as target_timeout; replay
            → identical; an LWT target fails fails the client (never journaled), counted apart
  full      isolate with a 1 MiB journal and target stopped: the journal fills, writes fall
            back to fail mode (client errors, zdm_proxy_journal_full 1,
            zdm_proxy_journal_full_writes_total > 0); nothing silently dropped
  compare   read_compare with DUAL_ASYNC_ON_SECONDARY: identical clusters → every mirrored read
            compared, 0 mismatches; 5 rows changed directly on target → 5 mismatches for that
            table, their partition keys logged, no cell value
Ends with "N passed, N failed". Processes started here are stopped by pid.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from cassandra.query import BatchStatement, BatchType

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build")
TESTCLUSTER = os.path.join(BUILD, "testcluster", "zdm-testcluster")
PROXY = os.path.join(BUILD, "proxy", "zdm-proxy")
# zdm-data of this build, or ZDM_DATA_BIN (the sanitizer builds have no zdm-data of their own).
DATA = os.environ.get("ZDM_DATA_BIN", os.path.join(BUILD, "data", "zdm-data"))
NET = os.environ.get("ZDM_TEST_NET", "127.29")
ORIGIN = [f"{NET}.2.1", f"{NET}.2.2", f"{NET}.2.3"]
TARGET = [f"{NET}.3.1", f"{NET}.3.2", f"{NET}.3.3"]
ADMIN = {"origin": f"{NET}.2.1:9180", "target": f"{NET}.3.1:9180"}
PROXY_IP, PORT, METRICS = f"{NET}.1.1", 9042, 14001
TOKEN = "s3cret-admin"
OUTAGE = float(os.environ.get("ZDM_ISOLATE_OUTAGE_S", "60"))
RATE = 300   # requests per second at most
WINDOW = 16  # in flight at most

sys.path.insert(0, HERE)
from harness import Checks, Processes, run_scenarios, http_json, metric_sum, python_session, readiness as ready, wait_port  # noqa: E402

check = Checks()
TMP = tempfile.mkdtemp(prefix="zdm-target-protection-")
procs = Processes(TMP)
start, stop = procs.start, procs.stop


def admin(cluster, method, path, body=None):
    return http_json(f"http://{ADMIN[cluster]}{path}", method, body)


def api(method, path, token=TOKEN, body=None):
    """(status, JSON or text) of the proxy's /api/v1/target endpoints."""
    req = urllib.request.Request(f"http://{PROXY_IP}:{METRICS}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text


def clusters():
    for name, nodes in (("origin", ORIGIN), ("target", TARGET)):
        start(name, [TESTCLUSTER, "--cluster-name", name, "--nodes", ",".join(nodes), "--port", str(PORT),
                     "--prepared-per-node", "--admin", ADMIN[name]])
    for ip in ORIGIN + TARGET:
        assert wait_port(ip, PORT), f"node {ip} did not start"


PROXIES = [PROXY_IP, f"{NET}.1.2", f"{NET}.1.3"]


def proxies(name, extra="", n=1):
    """n proxies (127.29.1.1-n, one topology), each with its journal TMP/journal-NAME[-i];
    returns the journal directories once every proxy is ready."""
    for i in range(3):
        stop("proxy" if i == 0 else f"proxy{i + 1}")
    journals, procs_ = [], []
    for i in range(n):
        ip = PROXIES[i]
        journal = os.path.join(TMP, "journal-" + name + ("" if i == 0 else f"-{i + 1}"))
        path = os.path.join(TMP, f"zdm-{i + 1}.yml")
        with open(path, "w") as f:
            f.write(f"""origin_contact_points: {",".join(ORIGIN)}
target_contact_points: {",".join(TARGET)}
proxy_listen_address: {ip}
proxy_listen_port: {PORT}
metrics_address: {ip}
metrics_port: {METRICS}
proxy_topology_addresses: {",".join(PROXIES[:n])}
proxy_topology_index: {i}
heartbeat_retry_interval_max_ms: 500
proxy_request_timeout_ms: 4000
proxy_admin_token: {TOKEN}
proxy_journal_dir: {journal}
""" + extra)
        procs_.append((ip, start("proxy" if i == 0 else f"proxy{i + 1}", [PROXY, "--config", path])))
        journals.append(journal)
    deadline = time.monotonic() + 15
    for ip, p in procs_:
        while time.monotonic() < deadline and p.poll() is None and ready(f"{ip}:{METRICS}")[0] != 200:
            time.sleep(0.1)
        if ready(f"{ip}:{METRICS}")[0] != 200:
            raise AssertionError(f"proxy {ip} did not become ready")
    return journals


def proxy(name, extra=""):
    return proxies(name, extra, 1)[0]


def metric(prefix, label="", ip=PROXY_IP):
    return metric_sum(f"{ip}:{METRICS}", prefix, label)


def session(hosts, timeout=10):
    return python_session(hosts, PORT, timeout)


def schema(s, ks, tables):
    s.execute(f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 3}")
    for t in tables:
        s.execute(f"CREATE TABLE IF NOT EXISTS {ks}.{t} (k int PRIMARY KEY, v text)")


def target_statements():
    """QUERY, EXECUTE and BATCH requests target's nodes received, by the stand-in's counts."""
    n = 0
    for node in admin("target", "GET", "/")["nodes"]:
        for levels in node.get("consistency", {}).values():  # {opcode: {level: count}}
            n += sum(levels.values())
    return n


def table_rows(hosts, ks, table):
    c, s = session(hosts)
    rows = {r.k: r.v for r in s.execute(f"SELECT k, v FROM {ks}.{table}")}
    c.shutdown()
    return rows


def replay(journal):
    r = subprocess.run([DATA, "replay", "--journal", journal, "--target", ",".join(TARGET),
                        "--target-port", str(PORT), "--rate", "0"],
                       capture_output=True, text=True, timeout=120)
    print(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "(replay printed nothing)")
    return r


def same_on_both(ks, table, what):
    o, t = table_rows(ORIGIN, ks, table), table_rows(TARGET, ks, table)
    missing = sorted(set(o) - set(t))
    differ = sorted(k for k in o if k in t and o[k] != t[k])
    check(o and not missing and not differ and len(o) == len(t),
          f"{what}: {ks}.{table} identical on both clusters ({len(o)} rows on origin, {len(t)} on "
          f"target, {len(missing)} missing, {len(differ)} differ: {missing[:5]} {differ[:5]})")
    return o


class Load:
    """Prepared writes and reads through the proxy, at most RATE/s and WINDOW in flight, until
    stopped or `seconds` pass. Records failures and the keys whose writes were acknowledged."""

    def __init__(self, s, ks, table, key0, reads=True, keys=5000, batches=False):
        self.s, self.key0, self.reads, self.keys, self.batches = s, key0, reads, keys, batches
        self.ins = s.prepare(f"INSERT INTO {ks}.{table} (k, v) VALUES (?, ?)")
        self.sel = s.prepare(f"SELECT v FROM {ks}.{table} WHERE k = ?")
        self.ok = {"write": 0, "read": 0}
        self.errors, self.acked, self.latencies = [], {}, []
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(WINDOW)
        self.stopping = False

    def run(self, seconds):
        deadline = time.monotonic() + seconds
        i = 0
        while not self.stopping and time.monotonic() < deadline and i < RATE * seconds:
            self.slots.acquire()
            kind = "read" if self.reads and i % 4 == 3 else "write"  # not in step with 3 proxies
            k = self.key0 + (i % self.keys)
            v = f"v{i}"
            t0 = time.monotonic()
            keys = [k]
            if kind == "read":
                f = self.s.execute_async(self.sel, (k,))
            elif self.batches and i % 4 == 0:
                # An UNLOGGED batch of two rows: a batch target may be killed in the middle of.
                keys = [k, self.key0 + (i + 1) % self.keys]
                b = BatchStatement(batch_type=BatchType.UNLOGGED)
                for key in keys:
                    b.add(self.ins, (key, v))
                f = self.s.execute_async(b)
            else:
                f = self.s.execute_async(self.ins, (k, v))
            f.add_callbacks(self._done, self._failed, callback_args=(kind, keys, v, t0), errback_args=(kind,))
            i += 1
            time.sleep(1 / RATE)
        for _ in range(WINDOW):
            self.slots.acquire(timeout=15)

    def start(self, seconds):
        self.thread = threading.Thread(target=self.run, args=(seconds,))
        self.thread.start()

    def finish(self):
        self.stopping = True
        self.thread.join()

    def _done(self, _rows, kind, keys, v, t0):
        with self.lock:
            self.ok[kind] += 1
            self.latencies.append(time.monotonic() - t0)
            if kind == "write":
                for k in keys:
                    self.acked[k] = v
        self.slots.release()

    def _failed(self, exc, kind):
        with self.lock:
            self.errors.append((kind, repr(exc)))
        self.slots.release()


def on_origin(ks, table, acked, what):
    rows = table_rows(ORIGIN, ks, table)
    lost = [k for k in acked if k not in rows]
    check(not lost, f"{what}: every acknowledged write is on origin ({len(acked)} keys, {len(lost)} missing)")


# ---------------------------------------------------------------------------------------------

def scenario_switch():
    journal = proxy("switch")
    c, s = session([PROXY_IP])
    schema(s, "sw", ["t", "bg"])
    code, body = api("GET", "/api/v1/target", token=None)
    check(code == 401, f"GET /api/v1/target without the token: 401 ({code})")
    code, body = api("POST", "/api/v1/target/disable", token="wrong")
    check(code == 401, f"POST disable with a wrong token: 401 ({code})")
    code, body = api("GET", "/api/v1/target")
    check(code == 200 and body.get("enabled") is True and body["journal"]["dir"] == journal,
          f"GET /api/v1/target: enabled, the journal's dir ({code} {body})")
    check(metric("zdm_target_enabled") == 1, "zdm_target_enabled 1")

    ins = s.prepare("INSERT INTO sw.t (k, v) VALUES (?, ?)")
    bg = Load(s, "sw", "bg", 0)
    bg.start(30)
    for k in range(0, 50):
        s.execute(ins, (k, "before"))
    time.sleep(1)
    code, body = api("POST", "/api/v1/target/disable", body={"by": "test_target_protection"})
    check(code == 200 and body.get("enabled") is False, f"POST /api/v1/target/disable: 200, disabled ({code} {body})")
    check(metric("zdm_target_enabled") == 0, "zdm_target_enabled 0 while disabled")
    time.sleep(0.3)  # requests routed before the switch are answered
    seen0 = target_statements()
    # While disabled: prepared, simple and batched writes; keys 100-199 new, 0-19 rewritten,
    # 200-219 written now and again after the switch.
    writes = 0
    for k in range(100, 200):
        s.execute(ins, (k, "during"))
        writes += 1
    for k in range(0, 20):
        s.execute("INSERT INTO sw.t (k, v) VALUES (%s, %s)", (k, "during"))
        writes += 1
    for k in range(200, 220, 4):
        s.execute("BEGIN BATCH " + " ".join(f"INSERT INTO sw.t (k, v) VALUES ({j}, 'during');"
                                           for j in range(k, k + 4)) + " APPLY BATCH")
        writes += 1
    time.sleep(2)
    seen1 = target_statements()
    check(seen1 == seen0, f"target received no QUERY/EXECUTE/BATCH while disabled ({seen1 - seen0})")
    div = metric("zdm_proxy_target_divergence_writes_total", 'keyspace="sw",table="t",reason="target_disabled"')
    check(div == writes, f"divergence counter of sw.t = its writes while disabled ({div} = {writes})")
    code, body = api("GET", "/api/v1/target")
    check(code == 200 and body["journal"]["unsettled"] >= writes and body["journal"]["bytes"] > 0,
          f"the journal holds them ({body['journal']})")
    code, body = api("POST", "/api/v1/target/enable", body={"by": "test_target_protection"})
    check(code == 200 and body.get("enabled") is True, f"POST /api/v1/target/enable: 200 ({code})")
    for k in range(200, 220):
        s.execute(ins, (k, "after"))
    seen2 = target_statements()
    check(seen2 > seen1, f"target receives writes again ({seen2 - seen1})")
    bg.finish()
    check(not bg.errors, f"0 client errors under load while switching ({bg.ok}, {bg.errors[:3]})")
    before = table_rows(TARGET, "sw", "t")
    check(all(k not in before for k in range(100, 200)), "before replay, target lacks the writes it missed")
    r = replay(journal)
    check(r.returncode == 0, f"zdm-data replay exits 0 ({r.returncode}: {r.stderr[-300:]})")
    rows = same_on_both("sw", "t", "switch")
    check(all(rows.get(k) == "after" for k in range(200, 220)),
          "rows rewritten after the switch keep their newer value after replay")
    check(all(rows.get(k) == "during" for k in range(0, 20)), "rows rewritten while disabled have that value")
    same_on_both("sw", "bg", "switch background")
    # The replay kept each writer's newest segment (the proxy may still append to it) with a
    # checkpoint side file: what it applied no longer counts as unsettled (zdm-deploy reads this
    # number before a cutover).
    marks = sorted(f for f in os.listdir(journal) if f.endswith(".replayed"))
    check(marks, f"the replay checkpointed the segments it kept ({os.listdir(journal)})")
    code, body = api("GET", "/api/v1/target")
    check(code == 200 and body["journal"]["unsettled"] == 0,
          f"after the replay, GET /api/v1/target reports journal unsettled 0 ({code} {body})")
    c.shutdown()

    # The switch survives a restart (a rolling update while target is disabled).
    api("POST", "/api/v1/target/disable", body={"by": "restart check"})
    proxy("switch")
    code, body = api("GET", "/api/v1/target")
    check(code == 200 and body.get("enabled") is False, f"still disabled after a restart ({code} {body})")
    api("POST", "/api/v1/target/enable")
    proxy("switch")
    code, body = api("GET", "/api/v1/target")
    check(code == 200 and body.get("enabled") is True, f"enabled again, it stays so after a restart ({code} {body})")

    # Target as the primary: it cannot be disabled.
    proxy("switch-primary", "primary_cluster: TARGET\n")
    code, body = api("POST", "/api/v1/target/disable")
    check(code == 409 and "primary" in str(body), f"disable with primary_cluster TARGET: 409 ({code} {body})")


def stop_target():
    for n in TARGET:
        admin("target", "POST", f"/nodes/{n}/stop")


def start_target():
    for n in TARGET:
        if not admin("target", "GET", f"/nodes/{n}")["up"]:
            admin("target", "POST", f"/nodes/{n}/start")


def validate(ks, table):
    """zdm-data validate of one table: (exit code, its summary line)."""
    r = subprocess.run([DATA, "validate", "--origin", ",".join(ORIGIN), "--target", ",".join(TARGET),
                        "--origin-port", str(PORT), "--target-port", str(PORT), "-k", ks, "-t", table],
                       capture_output=True, text=True, timeout=300)
    return r.returncode, (r.stdout.strip().splitlines() or [""])[-1]


def scenario_isolate():
    journals = proxies("isolate", """target_failure_mode: isolate
target_write_timeout_ms: 800
target_circuit_failures: 5
target_circuit_probe_interval_ms: 1000
""", n=3)
    c, s = session(PROXIES[:3], timeout=12)
    schema(s, "iso", ["t"])
    # 2000 keys: rows written during the outage are written again after it (newer writes win).
    load = Load(s, "iso", "t", 0, keys=2000, batches=True)
    seconds = OUTAGE + 16
    load.start(seconds)
    time.sleep(4)
    t0 = time.monotonic()
    stop_target()
    isolated = set()
    while time.monotonic() - t0 < OUTAGE:
        for ip in PROXIES:
            if metric("zdm_proxy_target_isolated", ip=ip) == 1:
                isolated.add(ip)
        time.sleep(0.5)
    start_target()
    check(len(isolated) == 3, f"every proxy's circuit opened during the outage ({sorted(isolated)})")
    seen = target_statements()
    time.sleep(10)
    check(target_statements() > seen, "target receives writes again once it is back")
    load.finish()
    check(not load.errors, f"0 client errors on reads and writes through a {OUTAGE:.0f} s outage of every "
                           f"target node ({load.ok}, {len(load.errors)} errors: {load.errors[:3]})")
    on_origin("iso", "t", load.acked, "isolate")
    missed = pending = 0
    for ip in PROXIES:
        m = metric("zdm_proxy_target_divergence_writes_total", 'keyspace="iso",table="t"', ip=ip)
        req = urllib.request.Request(f"http://{ip}:{METRICS}/api/v1/target",
                                     headers={"Authorization": "Bearer " + TOKEN})
        with urllib.request.urlopen(req, timeout=10) as r:
            j = json.loads(r.read())["journal"]
        check(m > 0 and j["unsettled"] == m,
              f"{ip}: its journal holds exactly the writes target missed ({j['unsettled']} unsettled, {m:.0f} counted)")
        missed += m
        pending += j["unsettled"]
    t1 = time.monotonic()
    codes = [replay(j).returncode for j in journals]
    replay_s = time.monotonic() - t1
    check(codes == [0, 0, 0], f"zdm-data replay of each proxy's journal exits 0 ({codes})")
    code, summary = validate("iso", "t")
    check(code == 0, f"zdm-data validate: no difference in iso.t after the replay ({code}: {summary})")
    same_on_both("iso", "t", "isolate")
    RESULTS["isolate"] = {"writes_per_s": round(load.ok["write"] / seconds), "reads": load.ok["read"],
                          "outage_s": OUTAGE, "client_errors": len(load.errors), "journaled": int(missed),
                          "replay_s": round(replay_s, 1), "validate": summary}
    print(f"isolate: {RESULTS['isolate']}")
    c.shutdown()


def scenario_crash():
    """A proxy killed between origin's answers and target's: the journal still knows."""
    journal = proxy("crash", """target_failure_mode: isolate
target_write_timeout_ms: 3500
target_circuit_failures: 1000
""")
    c, s = session([PROXY_IP], timeout=12)
    schema(s, "cr", ["t"])
    ins = s.prepare("INSERT INTO cr.t (k, v) VALUES (?, ?)")
    for k in range(10):
        s.execute(ins, (k, "before"))
    # Target answers writes after 3 s, with an error (it never applies them).
    admin("target", "POST", "/faults", {"latency": {"min_ms": 3000, "max_ms": 3000, "statements": "writes"},
                                        "error": {"type": "unavailable", "statements": "writes"}})
    futures = [s.execute_async(ins, (k, "crash")) for k in range(10, 60)]
    time.sleep(1.0)
    origin_rows = table_rows(ORIGIN, "cr", "t")
    check(all(k in origin_rows for k in range(10, 60)), "origin applied the 50 writes while target holds them")
    procs.procs["proxy"].kill()  # SIGKILL: no shutdown, no flush
    procs.procs["proxy"].wait()
    for f in futures:
        try:
            f.result()
        except Exception:  # noqa: BLE001 - the connection died with the proxy
            pass
    c.shutdown()
    admin("target", "DELETE", "/faults")
    check(not any(k in table_rows(TARGET, "cr", "t") for k in range(10, 60)), "target has none of them")
    proxy("crash")
    code, body = api("GET", "/api/v1/target")
    check(body["journal"]["unsettled"] >= 50, f"restarted, the proxy reports them unsettled ({body['journal']})")
    check("writes of earlier runs that target may not have" in open(os.path.join(TMP, "proxy.log")).read(),
          "the restarted proxy says so in its log")
    r = replay(journal)
    check(r.returncode == 0, f"zdm-data replay exits 0 ({r.returncode}: {r.stderr[-300:]})")
    same_on_both("cr", "t", "crash")


def scenario_slow():
    journal = proxy("slow", """target_failure_mode: isolate
target_write_timeout_ms: 400
target_circuit_failures: 1000
""")
    c, s = session([PROXY_IP], timeout=12)
    schema(s, "slw", ["t"])
    load = Load(s, "slw", "t", 0, reads=False)
    admin("target", "POST", "/faults", {"latency": {"min_ms": 3000, "max_ms": 3000, "statements": "writes"}})
    load.run(4)
    admin("target", "DELETE", "/faults")
    check(not load.errors, f"0 client errors with target's writes answered after 3 s ({load.ok}, {load.errors[:3]})")
    slowest = max(load.latencies) if load.latencies else 0
    check(slowest < 1.5, f"writes answered within ~target_write_timeout_ms, not target's 3 s (slowest {slowest:.2f} s)")
    t = metric("zdm_proxy_target_divergence_writes_total", 'keyspace="slw",table="t",reason="target_timeout"')
    check(t > 0, f"journaled as target_timeout ({t:.0f})")
    time.sleep(3.5)  # target's late answers arrive
    r = replay(journal)
    check(r.returncode == 0, f"zdm-data replay exits 0 ({r.returncode}: {r.stderr[-300:]})")
    same_on_both("slw", "t", "slow")
    # A lightweight transaction cannot be replayed: target's failure fails it, as in fail mode,
    # and is counted apart.
    admin("target", "POST", "/faults", {"error": {"type": "unavailable", "statements": "writes"}})
    failed = None
    try:
        s.execute("INSERT INTO slw.t (k, v) VALUES (99999, 'lwt') IF NOT EXISTS")
    except Exception as e:  # noqa: BLE001 - the error is what is checked
        failed = e
    admin("target", "DELETE", "/faults")
    check(failed is not None, f"an LWT target fails fails the client's request ({failed!r})")
    n = metric("zdm_proxy_target_unjournaled_writes_total", 'keyspace="slw",table="t",kind="lwt_or_counter"')
    check(n == 1, f"counted in zdm_proxy_target_unjournaled_writes_total{{kind=lwt_or_counter}} ({n:.0f})")
    c.shutdown()


def scenario_full():
    proxy("full", """target_failure_mode: isolate
target_write_timeout_ms: 400
proxy_journal_max_bytes: 1048576
""")
    c, s = session([PROXY_IP], timeout=12)
    schema(s, "ful", ["t"])
    ins = s.prepare("INSERT INTO ful.t (k, v) VALUES (?, ?)")
    stop_target()
    big = "x" * 20000
    errors = ok = 0
    for k in range(120):  # 2.4 MB of writes for a 1 MiB journal
        try:
            s.execute(ins, (k, big))
            ok += 1
        except Exception:  # noqa: BLE001 - the fallback's errors are what is counted
            errors += 1
    start_target()
    full_writes = metric("zdm_proxy_journal_full_writes_total")
    check(ok > 0 and errors > 0, f"writes journaled until it was full, then failed as in fail mode ({ok} ok, {errors} failed)")
    check(full_writes >= errors, f"zdm_proxy_journal_full_writes_total counts them ({full_writes:.0f})")
    check(metric("zdm_proxy_journal_full ") == 1, "zdm_proxy_journal_full 1")
    c.shutdown()


def fresh(fn):
    """`fn` on clusters without faults, every node up."""
    def run():
        admin("origin", "DELETE", "/faults")
        admin("target", "DELETE", "/faults")
        start_target()
        fn()
    return run


def scenario_compare():
    proxy("compare", "read_mode: DUAL_ASYNC_ON_SECONDARY\nread_compare: true\n")
    c, s = session([PROXY_IP])
    schema(s, "rc", ["t"])
    ins = s.prepare("INSERT INTO rc.t (k, v) VALUES (?, ?)")
    sel = s.prepare("SELECT k, v FROM rc.t WHERE k = ?")
    for k in range(40):
        s.execute(ins, (k, f"v{k}"))

    def read_all():
        for k in range(40):
            s.execute(sel, (k,))
        time.sleep(1)  # the mirrored reads' answers
        return (metric("zdm_proxy_read_comparisons_total", 'keyspace="rc",table="t"'),
                metric("zdm_proxy_read_mismatches_total", 'keyspace="rc",table="t"'))

    compared, mismatched = read_all()
    check(compared == 40 and mismatched == 0, f"identical clusters: 40 reads compared, 0 mismatches ({compared:.0f}, {mismatched:.0f})")
    ct, st = session(TARGET)
    for k in range(5):
        st.execute("UPDATE rc.t SET v = 'changed-on-target' WHERE k = %s", (k,))
    ct.shutdown()
    compared, mismatched = read_all()
    check(compared == 80 and mismatched == 5,
          f"5 rows changed directly on target: 5 mismatches counted for rc.t ({compared:.0f}, {mismatched:.0f})")
    log = open(os.path.join(TMP, "proxy.log")).read()
    keys = {f"0x{k:08x}" for k in range(5)}
    sampled = {k for k in keys if f"rc.t differs between primary and secondary for partition key {k}" in log}
    check(sampled == keys, f"the mismatching reads' partition keys are logged ({sorted(sampled)})")
    check("changed-on-target" not in log and "v1" not in log.split("read_compare")[-1],
          "no cell value in the log")
    c.shutdown()


RESULTS = {}
SCENARIOS = [("switch", fresh(scenario_switch)), ("isolate", fresh(scenario_isolate)),
             ("crash", fresh(scenario_crash)),
             ("slow", fresh(scenario_slow)), ("full", fresh(scenario_full)),
             ("compare", fresh(scenario_compare))]


if __name__ == "__main__":
    sys.exit(run_scenarios(SCENARIOS, clusters, check, procs, TMP, sys.argv))
