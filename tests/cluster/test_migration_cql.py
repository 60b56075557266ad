#!/usr/bin/python3
"""zdm-testcluster runs what migrations run, and fails on demand: the real DataStax python-driver
against a 3-node stand-in.

Usage: /usr/bin/python3 test_migration_cql.py [path/to/zdm-testcluster]
Address plan: 127.12.2.1-3 (this directory's), CQL port 19043, fault admin 127.12.2.1:19180; a
second process for persistence on port 19044. Sections:
- the migration guides' statements (uuid()/now() inserts, COUNT(*), ALLOW FILTERING, TRUNCATE,
  system.local as cqlsh reads it, server-side DESCRIBE);
- writetime/ttl, USING TIMESTAMP/TTL (TTL expiry observed), last write wins, the protocol's
  default timestamp;
- token() and token-range scans (every row exactly once), collections, counters, LWT, clustering
  restrictions, static columns, PER PARTITION LIMIT, ORDER BY, paging, tracing;
- every fault type as the driver sees it, node stop/start (prepared statements forgotten, the
  driver re-prepares), persistence across SIGTERM and SIGKILL restarts.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import logging
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BINARY = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "testcluster", "zdm-testcluster")
NODES = ["127.12.2.1", "127.12.2.2", "127.12.2.3"]
PORT, PERSIST_PORT = 19043, 19044
ADMIN = "127.12.2.1:19180"

sys.path.insert(0, os.path.join(ROOT, "tests", "drivers"))
from harness import Checks, DriverLogCollector, wait_port  # noqa: E402

logging.basicConfig(level=logging.ERROR)
# The driver's own trace reader indexes result sets (a DeprecationWarning in 3.25).
warnings.filterwarnings("ignore", category=DeprecationWarning)
collector = DriverLogCollector()
logging.getLogger("cassandra").addHandler(collector)

from cassandra import (ConsistencyLevel, InvalidRequest, OperationTimedOut, ReadTimeout,  # noqa: E402
                       Unavailable, WriteTimeout)
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable  # noqa: E402
from cassandra.murmur3 import murmur3  # noqa: E402
from cassandra.policies import FallthroughRetryPolicy, RoundRobinPolicy  # noqa: E402
from cassandra.protocol import (IsBootstrappingErrorMessage, OverloadedErrorMessage,  # noqa: E402
                                ServerError, SyntaxException)
from cassandra.query import BatchStatement, BatchType, SimpleStatement  # noqa: E402

check = Checks()


def admin(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{ADMIN}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def start(port, *extra, log_name="zdm-testcluster"):
    log = tempfile.NamedTemporaryFile(prefix=log_name + "-", suffix=".log", delete=False)
    proc = subprocess.Popen([BINARY, "--cluster-name", "migration", "--nodes", ",".join(NODES),
                             "--port", str(port), *extra], stdout=log, stderr=log)
    for ip in NODES:
        assert wait_port(ip, port), f"zdm-testcluster did not listen on {ip}:{port}"
    return proc, log


def stop(proc, sig="term"):
    if sig == "kill":
        proc.kill()
    else:
        proc.terminate()
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=5)


def expect_error(fn, exc_types, what, contains=None):
    try:
        fn()
        check(False, f"{what}: no error")
    except exc_types as e:
        msg = str(e)
        check(contains is None or contains in msg, f"{what}: {type(e).__name__}" + (f" ({contains})" if contains else ""))
        return e
    except Exception as e:  # noqa: BLE001 - reported
        check(False, f"{what}: unexpected {type(e).__name__}: {e}")
    return None


def host_of(cluster, address):
    return next(h for h in cluster.metadata.all_hosts() if h.address == address)


def wait_hosts_up(cluster, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hosts = cluster.metadata.all_hosts()
        if len(hosts) == 3 and all(h.is_up for h in hosts):
            return True
        time.sleep(0.1)
    return False


def token_of(*values_and_types):
    parts = [struct.pack(fmt, v) for v, fmt in values_and_types]
    if len(parts) == 1:
        return murmur3(parts[0])
    return murmur3(b"".join(struct.pack(">H", len(p)) + p + b"\x00" for p in parts))


# ---------------------------------------------------------------------------------------------

def guide_statements(session):
    """The statements of migration guides and labs (a ZDM migration lab, zdm-proxy's README, ZDM's
    and Aiven's migration guides), as cqlsh and the lab scripts send them."""
    s = session
    s.execute("CREATE KEYSPACE training WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    s.execute("CREATE TABLE training.users (user_id uuid PRIMARY KEY, username text, email text, "
              "status text, created_at timestamp)")
    before = int(time.time() * 1000)
    s.execute("INSERT INTO training.users (user_id, username, email, status, created_at)\n"
              "VALUES (uuid(), 'zdm_test_user', 'zdm@test.com', 'active', toTimestamp(now()));")
    after = int(time.time() * 1000)
    rows = list(s.execute("SELECT username, email FROM training.users WHERE username = 'zdm_test_user' ALLOW FILTERING;"))
    check([(r.username, r.email) for r in rows] == [("zdm_test_user", "zdm@test.com")],
          "the migration lab's INSERT ... VALUES (uuid(), ..., toTimestamp(now())) then SELECT ... ALLOW FILTERING")
    row = s.execute("SELECT user_id, created_at, writetime(email) FROM training.users").one()
    created_ms = int(row.created_at.replace(tzinfo=None).timestamp() * 1000) if row.created_at.tzinfo else \
        int((row.created_at - __import__("datetime").datetime(1970, 1, 1)).total_seconds() * 1000)
    check(row.user_id.version == 4 and before - 5 <= created_ms <= after + 5,
          f"uuid() is a random UUID, toTimestamp(now()) the server's clock ({created_ms} in [{before}, {after}])")
    expect_error(lambda: s.execute("SELECT username, email FROM training.users WHERE username = 'zdm_test_user'"),
                 InvalidRequest, "the same SELECT without ALLOW FILTERING",
                 "Cannot execute this query as it might involve data filtering and thus may have unpredictable "
                 "performance. If you want to execute this query despite the performance unpredictability, use "
                 "ALLOW FILTERING")
    for i in range(5):
        s.execute("INSERT INTO training.users (user_id, username, email, status, created_at) "
                  "VALUES (uuid(), %s, %s, %s, toTimestamp(now()))",
                  (f"zdm_bulk_{i}", f"b{i}@test.com", "active" if i % 2 else "inactive"))
    check(s.execute("SELECT COUNT(*) FROM training.users;").one().count == 6, "the migration lab's SELECT COUNT(*)")
    active = list(s.execute("SELECT username, email, status FROM training.users \nWHERE status = 'active' LIMIT 10 ALLOW FILTERING;"))
    check(len(active) == 3 and all(r.status == "active" for r in active), "the migration lab's WHERE status = 'active' LIMIT 10 ALLOW FILTERING")
    names = [r.username for r in s.execute("SELECT username FROM training.users")]
    check(sum(1 for n in names if n.startswith("zdm_bulk")) == 5, "the migration lab's SELECT username FROM training.users")
    local = s.execute("SELECT cluster_name, release_version FROM system.local;").one()
    check(local.cluster_name == "migration" and local.release_version == "4.1.5",
          f"the migration lab's SELECT cluster_name, release_version FROM system.local ({local})")
    cq = s.execute("select * from system.local where key = 'local'").one()
    check(cq.release_version == "4.1.5" and cq.cql_version == "3.4.6", "cqlsh's connect query: select * from system.local where key = 'local'")
    expect_error(lambda: s.execute("DELETE FROM training.users WHERE username LIKE 'zdm_%' ALLOW FILTERING;"),
                 SyntaxException, "the migration lab's clean-up DELETE ... LIKE ... ALLOW FILTERING is a syntax error, as in Cassandra",
                 "mismatched input 'ALLOW' expecting EOF")
    s.execute("TRUNCATE training.users;")
    check(s.execute("SELECT COUNT(*) FROM training.users").one()[0] == 0, "the migration lab's TRUNCATE training.users")

    # zdm-proxy's own README (datastax/zdm-proxy README.md).
    s.execute("CREATE KEYSPACE test WITH REPLICATION = {'class' : 'SimpleStrategy', 'replication_factor' : 1};")
    s.execute("CREATE TABLE test.keyvalue (key int PRIMARY KEY, value text);")
    s.execute("INSERT INTO test.keyvalue (key, value) VALUES (1, 'ABC');")
    s.execute("INSERT INTO test.keyvalue (key, value) VALUES (2, 'DEF');")
    check(sorted((r.key, r.value) for r in s.execute("SELECT * FROM test.keyvalue;")) == [(1, "ABC"), (2, "DEF")],
          "zdm-proxy's README: INSERT, SELECT *")
    s.execute("UPDATE test.keyvalue SET value='GYEKJF' WHERE key = 1;")
    s.execute("DELETE FROM test.keyvalue WHERE key = 2;")
    check([(r.key, r.value) for r in s.execute("SELECT * FROM test.keyvalue;")] == [(1, "GYEKJF")], "zdm-proxy's README: UPDATE, DELETE")

    # Aiven's ZDM migration guide: lower-case statements as typed in cqlsh.
    s.execute("create keyspace test_migration with replication = {'class': 'SimpleStrategy', 'replication_factor': 1};")
    s.execute("create table test_migration.data (n_id int, value int, primary key (n_id));")
    for n, v in ((1, 42), (2, 44), (3, 46), (4, 48), (5, 50)):
        s.execute(f"insert into test_migration.data (n_id, value) values ({n}, {v});")
    check(sorted((r.n_id, r.value) for r in s.execute("select * from test_migration.data;")) ==
          [(1, 42), (2, 44), (3, 46), (4, 48), (5, 50)], "Aiven's guide: lower-case create/insert/select")

    # ZDM's migration guide: DESCRIBE KEYSPACE (server-side, as cqlsh 6 sends it to a 4.x node), sampling.
    s.execute("CREATE KEYSPACE myapp WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}")
    s.execute("CREATE TABLE myapp.users (user_id int PRIMARY KEY, username text, email text)")
    desc = list(s.execute("DESCRIBE KEYSPACE myapp;"))
    check([(r.type, r.name) for r in desc] == [("keyspace", "myapp"), ("table", "users")] and
          desc[0].create_statement.startswith("CREATE KEYSPACE myapp WITH replication = {'class': "
                                              "'org.apache.cassandra.locator.NetworkTopologyStrategy', 'dc1': '3'}") and
          "PRIMARY KEY (user_id)" in desc[1].create_statement,
          "ZDM's migration guide: DESCRIBE KEYSPACE myapp (server-side rows with create_statement)")
    s.execute("CREATE KEYSPACE myapp2 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute(desc[1].create_statement.replace("myapp.users", "myapp2.users"))
    check("users" in [r.name for r in s.execute("DESCRIBE TABLES")] and
          {"myapp", "training", "system_traces"} <= {r.name for r in s.execute("DESCRIBE KEYSPACES")},
          "DESCRIBE's CREATE TABLE runs again; DESCRIBE TABLES / KEYSPACES list them")
    # ALTER TABLE, as schema alignment before a migration does it.
    s.execute("INSERT INTO myapp2.users (user_id, username) VALUES (1, 'old')")
    s.execute("ALTER TABLE myapp2.users ADD (country text, age int)")
    s.execute("UPDATE myapp2.users SET country = 'fr', age = 7 WHERE user_id = 1")
    s.execute("ALTER TABLE myapp2.users DROP email")
    s.execute("ALTER TABLE myapp2.users WITH comment = 'aligned' AND default_time_to_live = 0")
    r = s.execute("SELECT * FROM myapp2.users WHERE user_id = 1")
    check(r.column_names == ["user_id", "age", "country", "username"] and tuple(r.one()) == (1, 7, "fr", "old"),
          f"ALTER TABLE ADD / DROP / WITH keep the rows ({r.column_names})")
    expect_error(lambda: s.execute("ALTER TABLE myapp2.users DROP user_id"), InvalidRequest,
                 "ALTER TABLE DROP of a key column", "Cannot drop PRIMARY KEY column user_id")
    expect_error(lambda: s.execute("DESCRIBE KEYSPACE nope"), InvalidRequest, "DESCRIBE of an unknown keyspace",
                 "'nope' not found in keyspaces")
    for i in range(20):
        s.execute("INSERT INTO myapp.users (user_id, username, email) VALUES (%s, %s, %s)", (i, f"u{i}", f"u{i}@x"))
    sample = list(s.execute("SELECT user_id, username, email FROM myapp.users LIMIT 1000"))
    one = s.execute("SELECT * FROM myapp.users WHERE user_id = %s", (sample[0].user_id,)).one()
    check(len(sample) == 20 and one.username == sample[0].username, "ZDM's migration guide: sampling validation queries")


def write_times(session, cluster):
    s = session
    s.execute("CREATE KEYSPACE wt WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    s.execute("CREATE TABLE wt.t (k int PRIMARY KEY, v text, w int)")
    s.execute("INSERT INTO wt.t (k, v, w) VALUES (1, 'a', 1) USING TIMESTAMP 1000")
    r = s.execute("SELECT v, writetime(v), ttl(v) FROM wt.t WHERE k = 1").one()
    check((r.v, r.writetime_v, r.ttl_v) == ("a", 1000, None), f"USING TIMESTAMP: writetime(v) = 1000, ttl(v) null ({r})")
    s.execute("INSERT INTO wt.t (k, v) VALUES (1, 'older') USING TIMESTAMP 500")
    check(s.execute("SELECT v FROM wt.t WHERE k = 1").one().v == "a", "an older write loses (last write wins per cell)")
    s.execute("UPDATE wt.t USING TIMESTAMP 2000 SET v = 'newer' WHERE k = 1")
    r = s.execute("SELECT v, writetime(v), w, writetime(w) FROM wt.t WHERE k = 1").one()
    check((r.v, r.writetime_v, r.w, r.writetime_w) == ("newer", 2000, 1, 1000), f"a newer write wins, per cell ({r})")
    s.execute("DELETE FROM wt.t USING TIMESTAMP 1500 WHERE k = 1")
    r = s.execute("SELECT v, w FROM wt.t WHERE k = 1").one()
    check(r is not None and r.v == "newer" and r.w is None, f"a DELETE at 1500 removes cells written before, not after ({r})")
    s.execute("UPDATE wt.t USING TTL 100 SET w = 7 WHERE k = 1")
    r = s.execute("SELECT ttl(w), writetime(w) FROM wt.t WHERE k = 1").one()
    check(98 <= r.ttl_w <= 100, f"USING TTL 100: ttl(w) = {r.ttl_w}")
    # The protocol's default timestamp (the driver sends its client timestamp) is the write time.
    saved = cluster.timestamp_generator
    cluster.timestamp_generator = lambda: 424242
    try:
        s.execute("INSERT INTO wt.t (k, v) VALUES (2, 'client-ts')")
        prepared = s.prepare("INSERT INTO wt.t (k, v) VALUES (?, ?)")
        s.execute(prepared, (3, "prepared-ts"))
        b = BatchStatement()
        b.add(prepared, (4, "batch-ts"))
        s.execute(b)
        s.execute("INSERT INTO wt.t (k, v) VALUES (5, 'lwt') IF NOT EXISTS")
    finally:
        cluster.timestamp_generator = saved
    got = {r.k: r.writetime_v for r in s.execute("SELECT k, writetime(v) FROM wt.t WHERE k IN (2, 3, 4, 5)")}
    check(got[2] == got[3] == got[4] == 424242, f"the default timestamp of QUERY, EXECUTE and BATCH is the write time ({got})")
    check(got[5] > 10**15, f"a conditional write ignores it: the ballot's time, as Cassandra ({got[5]})")
    # BATCH USING TIMESTAMP applies to every child; a child's USING TTL to its own cells.
    s.execute("BEGIN BATCH USING TIMESTAMP 5000 INSERT INTO wt.t (k, v) VALUES (20, 'b1'); "
              "INSERT INTO wt.t (k, v) VALUES (21, 'b2') USING TTL 50; APPLY BATCH")
    got = {r.k: (r.writetime_v, r.ttl_v) for r in s.execute("SELECT k, writetime(v), ttl(v) FROM wt.t WHERE k IN (20, 21)")}
    check(got[20] == (5000, None) and got[21][0] == 5000 and 48 <= got[21][1] <= 50,
          f"BEGIN BATCH USING TIMESTAMP, a child's USING TTL ({got})")
    expect_error(lambda: s.execute("BEGIN BATCH USING TIMESTAMP 5 INSERT INTO wt.t (k, v) VALUES (22, 'x') "
                                   "USING TIMESTAMP 6; APPLY BATCH"), InvalidRequest, "timestamps on the batch and a child",
                 "Timestamp must be set either on BATCH or individual statements")
    # TTL really expires (bounded wait).
    s.execute("INSERT INTO wt.t (k, v, w) VALUES (10, 'short', 1) USING TTL 1")
    check(s.execute("SELECT v FROM wt.t WHERE k = 10").one().v == "short", "a row with TTL 1 is there at first")
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline and s.execute("SELECT v FROM wt.t WHERE k = 10").one() is not None:
        time.sleep(0.2)
    check(s.execute("SELECT v FROM wt.t WHERE k = 10").one() is None and
          s.execute("SELECT count(*) FROM wt.t WHERE k = 10").one()[0] == 0, "TTL 1: the row expired within 4 s")
    expect_error(lambda: s.execute("INSERT INTO wt.t (k, v) VALUES (5, 'x') USING TTL -1"), InvalidRequest,
                 "a negative TTL", "A TTL must be greater or equal to 0, but was -1")
    expect_error(lambda: s.execute("SELECT writetime(k) FROM wt.t"), InvalidRequest, "writetime of a key column",
                 "Cannot use selection function writeTime on PRIMARY KEY part k")


def tokens(session):
    s = session
    s.execute("CREATE KEYSPACE tk WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    s.execute("CREATE TABLE tk.t (k int PRIMARY KEY, v int)")
    s.execute("CREATE TABLE tk.c (a text, b int, v int, PRIMARY KEY ((a, b)))")
    ins = s.prepare("INSERT INTO tk.t (k, v) VALUES (?, ?)")
    for k in range(200):
        s.execute(ins, (k, k * 10))
    rows = list(s.execute("SELECT token(k), k FROM tk.t"))
    toks = [r.system_token_k for r in rows]
    check(len(rows) == 200 and all(r.system_token_k == token_of((r.k, ">i")) for r in rows) and toks == sorted(toks),
          "SELECT token(k): Murmur3 as the driver computes it, rows in token order")
    s.execute("INSERT INTO tk.c (a, b, v) VALUES ('x', 7, 1)")
    r = s.execute("SELECT token(a, b) FROM tk.c").one()
    check(r[0] == murmur3(b"\x00\x01x\x00" + b"\x00\x04\x00\x00\x00\x07\x00"), "token() of a composite partition key")
    # A DSBulk-like scan: the ring split into ranges, every row exactly once.
    scan = s.prepare("SELECT k, v FROM tk.t WHERE token(k) > ? AND token(k) <= ?")
    bounds = [-2**63] + [-2**63 + (2**64 // 7) * i for i in range(1, 7)] + [2**63 - 1]
    seen, outside = [], 0
    for lo, hi in zip(bounds, bounds[1:]):
        part = [r.k for r in s.execute(scan, (lo, hi))]
        outside += sum(1 for k in part if not lo < token_of((k, ">i")) <= hi)
        seen += part
    check(sorted(seen) == list(range(200)) and outside == 0,
          f"token-range scan over 7 ranges: every row exactly once, each in its range ({len(seen)} rows)")
    named = s.prepare("SELECT k FROM tk.t WHERE token(k) > :start AND token(k) <= :end")
    check([c.name for c in named.column_metadata] == ["start", "end"] and
          sorted(r.k for r in s.execute(named, {"start": -2**63, "end": 2**63 - 1})) == list(range(200)),
          "DSBulk's named markers: token(k) > :start AND token(k) <= :end")
    pin = s.prepare("SELECT k, v FROM tk.t WHERE k IN ?")
    check(sorted((r.k, r.v) for r in s.execute(pin, ([3, 1, 2],))) == [(1, 10), (2, 20), (3, 30)], "prepared k IN ?")
    t5 = token_of((5, ">i"))
    check([r.k for r in s.execute("SELECT k FROM tk.t WHERE token(k) = token(5)")] == [5], "WHERE token(k) = token(5)")
    check([r.k for r in s.execute("SELECT k FROM tk.t WHERE token(k) >= %s AND token(k) <= %s", (t5, t5))] == [5],
          "WHERE token(k) >= t AND token(k) <= t")
    expect_error(lambda: s.execute("SELECT k FROM tk.t WHERE k > 5"), InvalidRequest, "a slice on the partition key",
                 "Only EQ and IN relation are supported on the partition key")


def collections(session):
    s = session
    s.execute("CREATE KEYSPACE col WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    s.execute("CREATE TABLE col.t (k int PRIMARY KEY, l list<int>, s set<text>, m map<text, int>, f frozen<list<int>>)")
    s.execute("INSERT INTO col.t (k, l, s, m, f) VALUES (1, [1, 2, 3], {'b', 'a'}, {'x': 1}, [9, 8])")
    s.execute("UPDATE col.t SET l = l + [4], s = s + {'c'}, m['y'] = 2 WHERE k = 1")
    s.execute("UPDATE col.t SET l = [0] + l, s = s - {'a'}, m = m + {'z': 3} WHERE k = 1")
    s.execute("UPDATE col.t SET l[2] = 20 WHERE k = 1")
    s.execute("UPDATE col.t SET l = l - [3] WHERE k = 1")
    s.execute("DELETE m['x'] FROM col.t WHERE k = 1")
    s.execute("DELETE l[0] FROM col.t WHERE k = 1")
    r = s.execute("SELECT l, s, m, f FROM col.t WHERE k = 1").one()
    check((list(r.l), sorted(r.s), dict(r.m), list(r.f)) == ([1, 20, 4], ["b", "c"], {"y": 2, "z": 3}, [9, 8]),
          f"collections: appends, prepends, element set/delete, set/map union and difference ({r})")
    p = s.prepare("UPDATE col.t SET m[?] = ?, l = l + ? WHERE k = ?")
    s.execute(p, ("w", 5, [7], 1))
    r = s.execute("SELECT l, m FROM col.t WHERE k = 1").one()
    check(list(r.l) == [1, 20, 4, 7] and r.m["w"] == 5, "prepared element update and append")
    s.execute("UPDATE col.t SET s = {} WHERE k = 1")
    check(s.execute("SELECT s FROM col.t WHERE k = 1").one().s is None, "an emptied set reads as null")
    expect_error(lambda: s.execute("UPDATE col.t SET l[10] = 1 WHERE k = 1"), InvalidRequest, "a list index out of bound",
                 "List index 10 out of bound, list has size 4")
    expect_error(lambda: s.execute("SELECT writetime(l) FROM col.t"), InvalidRequest, "writetime of a non-frozen collection",
                 "Cannot use selection function writeTime on non-frozen collection l")
    r = s.execute("SELECT writetime(f) FROM col.t WHERE k = 1").one()
    check(r[0] is not None and r[0] > 0, "writetime of a frozen collection")
    check([x.k for x in s.execute("SELECT k FROM col.t WHERE m CONTAINS KEY 'w' ALLOW FILTERING")] == [1],
          "CONTAINS KEY with ALLOW FILTERING")


def counters(session):
    s = session
    s.execute("CREATE KEYSPACE cnt WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    s.execute("CREATE TABLE cnt.c (k int PRIMARY KEY, hits counter, misses counter)")
    for _ in range(3):
        s.execute("UPDATE cnt.c SET hits = hits + 1 WHERE k = 1")
    s.execute("UPDATE cnt.c SET hits = hits - 1, misses = misses + 5 WHERE k = 1")
    p = s.prepare("UPDATE cnt.c SET hits = hits + ? WHERE k = ?")
    s.execute(p, (10, 1))
    b = BatchStatement(batch_type=BatchType.COUNTER)
    b.add(p, (100, 1))
    b.add(p, (1, 2))
    s.execute(b)
    got = {r.k: (r.hits, r.misses) for r in s.execute("SELECT k, hits, misses FROM cnt.c")}
    check(got == {1: (112, 5), 2: (1, None)}, f"counters: increments, decrements, prepared, COUNTER batch ({got})")
    expect_error(lambda: s.execute("INSERT INTO cnt.c (k, hits) VALUES (3, 1)"), InvalidRequest, "INSERT on a counter table",
                 "INSERT statements are not allowed on counter tables, use UPDATE instead")
    expect_error(lambda: s.execute("UPDATE cnt.c SET hits = 5 WHERE k = 1"), InvalidRequest, "setting a counter",
                 "Cannot set the value of counter column hits (counters can only be incremented/decremented, not set)")
    logged = BatchStatement(batch_type=BatchType.LOGGED)
    logged.add(p, (1, 1))
    expect_error(lambda: s.execute(logged), InvalidRequest, "a counter in a logged batch",
                 "Cannot include a counter statement in a logged batch")
    expect_error(lambda: s.execute("CREATE TABLE cnt.bad (k int PRIMARY KEY, c counter, v int)"), InvalidRequest,
                 "mixing counters", "Cannot mix counter and non counter columns in the same table")


def lwt(session):
    s = session
    s.execute("CREATE KEYSPACE lwt WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    s.execute("CREATE TABLE lwt.t (k int, c int, v text, n int, PRIMARY KEY (k, c))")
    r = s.execute("INSERT INTO lwt.t (k, c, v, n) VALUES (1, 1, 'first', 1) IF NOT EXISTS")
    check(r.was_applied and r.column_names == ["[applied]"], "INSERT IF NOT EXISTS: [applied] true, one column")
    r = s.execute("INSERT INTO lwt.t (k, c, v, n) VALUES (1, 1, 'second', 2) IF NOT EXISTS")
    row = r.one()
    check(not r.was_applied and r.column_names == ["[applied]", "k", "c", "n", "v"] and (row.v, row.n) == ("first", 1),
          f"INSERT IF NOT EXISTS again: [applied] false with the existing row ({r.column_names}, {row})")
    r = s.execute("UPDATE lwt.t SET v = 'x' WHERE k = 1 AND c = 1 IF v = 'nope' AND n = 1")
    check(not r.was_applied and r.column_names == ["[applied]", "v", "n"] and r.one().v == "first",
          f"UPDATE IF v = ... not applied: [applied] false with the condition columns ({r.column_names})")
    r = s.execute("UPDATE lwt.t SET v = 'updated' WHERE k = 1 AND c = 1 IF v = 'first'")
    check(r.was_applied and s.execute("SELECT v FROM lwt.t WHERE k = 1 AND c = 1").one().v == "updated",
          "UPDATE IF v = 'first' applied")
    r = s.execute("UPDATE lwt.t SET v = 'x' WHERE k = 9 AND c = 9 IF EXISTS")
    check(not r.was_applied and r.column_names == ["[applied]"], "UPDATE IF EXISTS on a missing row: [applied] false only")
    r = s.execute("DELETE FROM lwt.t WHERE k = 1 AND c = 1 IF EXISTS")
    check(r.was_applied and s.execute("SELECT * FROM lwt.t WHERE k = 1").one() is None, "DELETE IF EXISTS applied")
    p = s.prepare("INSERT INTO lwt.t (k, c, v) VALUES (?, ?, ?) IF NOT EXISTS")
    check(s.execute(p, (2, 2, "p")).was_applied and not s.execute(p, (2, 2, "q")).was_applied, "prepared IF NOT EXISTS")
    s.execute("CREATE TABLE lwt.s (k int, c int, a text, zz text static, PRIMARY KEY (k, c))")
    s.execute("INSERT INTO lwt.s (k, c, a, zz) VALUES (1, 1, 'a', 'z')")
    r = s.execute("INSERT INTO lwt.s (k, c, a) VALUES (1, 1, 'b') IF NOT EXISTS")
    check(r.column_names == ["[applied]", "k", "c", "zz", "a"] and s.execute("SELECT * FROM lwt.s").column_names ==
          ["k", "c", "zz", "a"], f"SELECT * order: keys, statics, regulars, each by name ({r.column_names})")
    r = s.execute("BEGIN BATCH INSERT INTO lwt.t (k, c, v) VALUES (3, 1, 'a') IF NOT EXISTS; "
                  "INSERT INTO lwt.t (k, c, v) VALUES (3, 2, 'b'); APPLY BATCH")
    check(r.was_applied and s.execute("SELECT count(*) FROM lwt.t WHERE k = 3").one()[0] == 2,
          "a conditional batch on one partition applies")
    r = s.execute("BEGIN BATCH UPDATE lwt.t SET v = 'x' WHERE k = 3 AND c = 1 IF v = 'nope'; "
                  "UPDATE lwt.t SET n = 1 WHERE k = 3 AND c = 2 IF n = 5; APPLY BATCH")
    check(r.column_names == ["[applied]", "k", "c", "v", "n"] and
          [tuple(x) for x in r] == [(False, 3, 1, "a", None), (False, 3, 2, "b", None)],
          f"a conditional batch not applied: the key and condition columns of each row read ({list(r)})")
    expect_error(lambda: s.execute("BEGIN BATCH INSERT INTO lwt.t (k, c, v) VALUES (4, 1, 'a') IF NOT EXISTS; "
                                   "INSERT INTO lwt.t (k, c, v) VALUES (5, 1, 'b'); APPLY BATCH"),
                 InvalidRequest, "a conditional batch over two partitions",
                 "Batch with conditions cannot span multiple partitions")
    expect_error(lambda: s.execute("UPDATE lwt.t USING TIMESTAMP 5 SET v = 'x' WHERE k = 2 AND c = 2 IF EXISTS"),
                 InvalidRequest, "USING TIMESTAMP with IF", "Cannot provide custom timestamp for conditional updates")


def queries(session):
    s = session
    s.execute("CREATE KEYSPACE q WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    s.execute("CREATE TABLE q.t (p int, c1 int, c2 int, st text static, v text, PRIMARY KEY (p, c1, c2)) "
              "WITH CLUSTERING ORDER BY (c1 DESC, c2 ASC)")
    ins = s.prepare("INSERT INTO q.t (p, c1, c2, v) VALUES (?, ?, ?, ?)")
    for p in range(4):
        for c1 in range(5):
            for c2 in range(2):
                s.execute(ins, (p, c1, c2, f"{p}.{c1}.{c2}"))
    got = [(r.c1, r.c2) for r in s.execute("SELECT c1, c2 FROM q.t WHERE p = 1 AND c1 > 1 AND c1 <= 3")]
    check(got == [(3, 0), (3, 1), (2, 0), (2, 1)], f"clustering slice in CLUSTERING ORDER (c1 DESC) ({got})")
    got = [(r.c1, r.c2) for r in s.execute("SELECT c1, c2 FROM q.t WHERE p = 1 AND c1 IN (0, 4) AND c2 = 1")]
    check(got == [(4, 1), (0, 1)], f"IN and = on clustering columns ({got})")
    got = [(r.c1, r.c2) for r in s.execute("SELECT c1, c2 FROM q.t WHERE p = 1 ORDER BY c1 ASC LIMIT 3")]
    check(got == [(0, 1), (0, 0), (1, 1)], f"ORDER BY c1 ASC reverses the partition ({got})")
    expect_error(lambda: s.execute("SELECT * FROM q.t WHERE p = 1 AND c2 = 1"), InvalidRequest, "a clustering gap",
                 'PRIMARY KEY column "c2" cannot be restricted as preceding column "c1" is not restricted')
    check(len(list(s.execute("SELECT * FROM q.t WHERE p = 1 AND c2 = 1 ALLOW FILTERING"))) == 5, "the gap with ALLOW FILTERING")
    expect_error(lambda: s.execute("SELECT * FROM q.t WHERE c1 = 1"), InvalidRequest, "clustering without the partition",
                 "use ALLOW FILTERING")
    s.execute("UPDATE q.t SET st = 'shared' WHERE p = 2")
    sts = {(r.c1, r.c2): r.st for r in s.execute("SELECT c1, c2, st FROM q.t WHERE p = 2")}
    check(len(sts) == 10 and set(sts.values()) == {"shared"}, "a static column shows on every row of its partition")
    s.execute("INSERT INTO q.t (p, st) VALUES (9, 'first')")
    check(s.execute("SELECT st FROM q.t WHERE p = 9").one().st == "first", "INSERT of a static column alone")
    s.execute("UPDATE q.t SET st = 'alone' WHERE p = 9")
    r = list(s.execute("SELECT p, c1, st, v FROM q.t WHERE p = 9"))
    check([(x.p, x.c1, x.st, x.v) for x in r] == [(9, None, "alone", None)], "a partition with only statics reads as one row")
    per = list(s.execute("SELECT p, c1 FROM q.t PER PARTITION LIMIT 2"))
    check(len(per) == 4 * 2 + 1 and all(sum(1 for x in per if x.p == p) <= 2 for p in range(4)), "PER PARTITION LIMIT 2")
    check(s.execute("SELECT COUNT(*) FROM q.t").one()[0] == 41 and
          s.execute("SELECT COUNT(*) FROM q.t WHERE p = 3").one()[0] == 10, "COUNT(*) of a table and of a partition")
    s.execute("INSERT INTO q.t (p, c1, c2) VALUES (3, 9, 9)")  # a row without v
    r = s.execute("SELECT count(*), count(v), min(c1), max(v), sum(c2), avg(c1) FROM q.t WHERE p = 3").one()
    check(tuple(r) == (11, 10, 0, "3.4.1", 14, 2), f"count(*), count(v), min, max, sum, avg ({tuple(r)})")
    s.execute("DELETE FROM q.t WHERE p = 3 AND c1 = 9 AND c2 = 9")
    distinct = sorted(r.p for r in s.execute("SELECT DISTINCT p FROM q.t"))
    check(distinct == [0, 1, 2, 3, 9], "SELECT DISTINCT p")
    # Paging: fetch_size 7 over 41 rows, every row once, in order; paging_state honoured by hand.
    full = [(r.p, r.c1, r.c2) for r in s.execute(SimpleStatement("SELECT p, c1, c2 FROM q.t", fetch_size=1000))]
    paged = [(r.p, r.c1, r.c2) for r in s.execute(SimpleStatement("SELECT p, c1, c2 FROM q.t", fetch_size=7))]
    check(paged == full and len(full) == 41, "paging (fetch_size 7) returns the same 41 rows in order")
    stmt = SimpleStatement("SELECT p, c1, c2 FROM q.t", fetch_size=10)
    rs = s.execute(stmt)
    first = [(r.p, r.c1, r.c2) for r in rs.current_rows]
    rs2 = s.execute(stmt, paging_state=rs.paging_state)
    second = [(r.p, r.c1, r.c2) for r in rs2.current_rows]
    check(first == full[:10] and second == full[10:20], "paging_state resumes where the page ended")
    lim = [(r.p, r.c1, r.c2) for r in s.execute(SimpleStatement("SELECT p, c1, c2 FROM q.t LIMIT 15", fetch_size=4))]
    check(lim == full[:15], "LIMIT across pages")
    s.execute("DELETE FROM q.t WHERE p = 0 AND c1 >= 3")
    check([r.c1 for r in s.execute("SELECT c1 FROM q.t WHERE p = 0 AND c2 = 0 ALLOW FILTERING")] == [2, 1, 0],
          "range deletion on a clustering slice")


def tracing(session, cluster):
    s = session
    rs = s.execute("SELECT * FROM q.t WHERE p = 1", trace=True)
    trace = rs.get_query_trace(max_wait_sec=5)
    check(trace is not None and trace.trace_id == rs.response_future._query_traces[0].trace_id and
          trace.duration is not None and len(trace.events) >= 3 and trace.coordinator in NODES and
          trace.parameters.get("query") == "SELECT * FROM q.t WHERE p = 1",
          f"TRACING: the response carries the session id; system_traces.sessions/events filled "
          f"({trace and len(trace.events)} events)")
    row = s.execute("SELECT request, coordinator FROM system_traces.sessions WHERE session_id = %s", (trace.trace_id,)).one()
    check(row is not None and row.request == "Execute CQL3 query", "SELECT FROM system_traces.sessions")
    p = s.prepare("SELECT v FROM q.t WHERE p = ? AND c1 = ? AND c2 = ?")
    rs = s.execute(p, (1, 1, 1), trace=True)
    check(rs.get_query_trace(max_wait_sec=5).request_type == "Execute CQL3 prepared query", "a traced EXECUTE")
    expect_error(lambda: s.execute("INSERT INTO system_traces.sessions (session_id) VALUES (now())"), InvalidRequest,
                 "system_traces is not user-modifiable", "system_traces keyspace is not user-modifiable.")


# ---------------------------------------------------------------------------------------------

def faults(cluster, session):
    h1, h2, h3 = (host_of(cluster, ip) for ip in NODES)
    status, state = admin("GET", "/")
    check(status == 200 and [n["address"] for n in state["nodes"]] == NODES and all(n["up"] for n in state["nodes"]),
          "admin GET /: three nodes up")
    check(admin("GET", "/nodes")[1] == [{"address": n, "up": True} for n in NODES], "admin GET /nodes")
    session.execute("CREATE KEYSPACE f WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    session.execute("CREATE TABLE f.t (k int PRIMARY KEY, v text)")
    ins = session.prepare("INSERT INTO f.t (k, v) VALUES (?, ?)")
    sel = session.prepare("SELECT v FROM f.t WHERE k = ?")
    session.execute(ins, (1, "one"))

    # Added latency on node 2 only.
    check(admin("POST", "/nodes/2/faults", {"latency": {"ms": 300}})[0] == 200, "admin: 300 ms latency on node 2")
    t0 = time.monotonic()
    session.execute(sel, (1,), host=h2)
    slow = time.monotonic() - t0
    t0 = time.monotonic()
    session.execute(sel, (1,), host=h1)
    fast = time.monotonic() - t0
    check(slow >= 0.3 and fast < 0.2, f"latency: node 2 answers in {slow:.3f} s, node 1 in {fast:.3f} s")
    check(admin("POST", "/nodes/2/faults", {"latency": None})[1]["faults"] == {}, "a fault set to null is removed")

    # Error answers, by type, as the driver raises them (no retries: FallthroughRetryPolicy).
    cases = [
        ({"type": "write_timeout", "statements": "writes"}, lambda: session.execute(ins, (2, "x"), host=h2), WriteTimeout),
        ({"type": "read_timeout", "statements": "reads"}, lambda: session.execute(sel, (1,), host=h2), ReadTimeout),
        ({"type": "unavailable"}, lambda: session.execute(ins, (2, "x"), host=h2), Unavailable),
        ({"type": "overloaded"}, lambda: session.execute(sel, (1,), host=h2), OverloadedErrorMessage),
        ({"type": "server_error"}, lambda: session.execute(sel, (1,), host=h2), ServerError),
        ({"type": "is_bootstrapping"}, lambda: session.execute(sel, (1,), host=h2), IsBootstrappingErrorMessage),
    ]
    for fault, run, exc in cases:
        admin("POST", "/nodes/2/faults", {"error": fault})
        e = expect_error(run, exc, f"error fault {fault['type']} -> {exc.__name__}")
        if isinstance(e, WriteTimeout):
            check(e.consistency == ConsistencyLevel.LOCAL_ONE and e.received_responses == 0 and e.required_responses == 1
                  and e.write_type == 0, f"WriteTimeout body: consistency, received 0, block_for 1, SIMPLE ({e})")
        if isinstance(e, ReadTimeout):
            check(e.received_responses == 0 and e.required_responses == 1 and not e.data_retrieved, f"ReadTimeout body ({e})")
        if isinstance(e, Unavailable):
            check(e.required_replicas == 1 and e.alive_replicas == 0, f"Unavailable body ({e})")
    # Reads/writes filters: a write fault leaves reads alone.
    admin("POST", "/nodes/2/faults", {"error": {"type": "write_timeout", "statements": "writes"}})
    check(session.execute(sel, (1,), host=h2).one().v == "one", "a writes-only fault leaves reads alone")
    admin("POST", "/nodes/2/faults", {"error": {"type": "write_timeout", "fraction": 0.5, "statements": "writes"}})
    failed = 0
    for i in range(200):
        try:
            session.execute(ins, (i, "f"), host=h2)
        except WriteTimeout:
            failed += 1
    check(60 <= failed <= 140, f"fraction 0.5: {failed} of 200 writes failed")
    status, body = admin("POST", "/nodes/2/faults", {"error": {"type": "nope"}})
    check(status == 400 and "error.type" in body["error"], f"an unknown error type is refused by name ({body})")
    status, body = admin("POST", "/nodes/2/faults", {"latncy": 5})
    check(status == 400 and "faults.latncy: unknown key" in body["error"], f"an unknown key is refused by name ({body})")
    check(admin("DELETE", "/nodes/2/faults")[1]["faults"] == {}, "admin DELETE /nodes/2/faults clears them")

    # Silence: accepted, never answered.
    admin("POST", "/nodes/2/faults", {"silence": {"statements": "reads"}})
    expect_error(lambda: session.execute(sel, (1,), host=h2, timeout=0.5), OperationTimedOut, "silence -> OperationTimedOut")
    admin("DELETE", "/nodes/2/faults")
    # Drop each request's connection.
    admin("POST", "/nodes/2/faults", {"drop": {"statements": "reads"}})
    expect_error(lambda: session.execute(sel, (1,), host=h2, timeout=2), (NoHostAvailable, OperationTimedOut, Exception),
                 "drop -> the request fails with its connection")
    admin("DELETE", "/nodes/2/faults")
    check(wait_hosts_up(cluster), "the driver reconnects after the dropped connection")
    # A corrupt frame.
    admin("POST", "/nodes/2/faults", {"garbage": {"statements": "reads"}})
    expect_error(lambda: session.execute(sel, (1,), host=h2, timeout=2), Exception, "garbage -> the driver fails the request")
    admin("DELETE", "/nodes/2/faults")
    check(wait_hosts_up(cluster), "the driver reconnects after the corrupt frame")
    # Close all connections now.
    status, _ = admin("POST", "/nodes/3/drop")
    check(status == 200 and wait_hosts_up(cluster), "admin POST /nodes/3/drop: connections closed, the driver reconnects")

    # Stop and start node 2: others answer (RF 3, ONE), ALL is Unavailable; the restarted node
    # forgot its prepared statements and the driver re-prepares on UNPREPARED.
    check(admin("GET", "/nodes/2")[1]["prepared"] >= 2, "node 2 holds prepared statements")
    status, body = admin("POST", f"/nodes/{NODES[1]}/stop")
    check(status == 200 and {"address": NODES[1], "up": False} in body, f"admin POST /nodes/{NODES[1]}/stop")
    time.sleep(0.2)
    check(not port_open(NODES[1], PORT) and port_open(NODES[0], PORT), "a stopped node's port is closed")
    session.execute(ins, (50, "while-down"), host=h1)
    all_cl = session.prepare("INSERT INTO f.t (k, v) VALUES (?, ?)")
    all_cl.consistency_level = ConsistencyLevel.ALL
    e = expect_error(lambda: session.execute(all_cl, (51, "x"), host=h1), Unavailable, "CL ALL with a node down -> Unavailable")
    if e:
        check(e.required_replicas == 3 and e.alive_replicas == 2, f"Unavailable(required 3, alive 2) ({e})")
    status, body = admin("POST", f"/nodes/{NODES[1]}/start")
    check(status == 200 and all(n["up"] for n in body) and admin("GET", "/nodes/2")[1]["prepared"] == 0,
          "admin start: node up, prepared statements forgotten")
    check(wait_port(NODES[1], PORT, 5) and wait_hosts_up(cluster, 20), "the driver sees node 2 up again")
    r = session.execute(sel, (50,), host=h2)
    check(r.one().v == "while-down" and admin("GET", "/nodes/2")[1]["prepared"] >= 1,
          "EXECUTE on the restarted node: UNPREPARED, the driver re-prepared and got the row")
    status, body = admin("POST", "/nodes/9/stop")
    check(status == 404, "an unknown node is a 404")


def persistence():
    with tempfile.TemporaryDirectory(prefix="zdm-testcluster-data-") as data:
        proc, log = start(PERSIST_PORT, "--data-dir", data, log_name="zdm-persist")
        c = Cluster(contact_points=[NODES[0]], port=PERSIST_PORT,
                    execution_profiles={EXEC_PROFILE_DEFAULT: ExecutionProfile(load_balancing_policy=RoundRobinPolicy())})
        s = c.connect()
        s.execute("CREATE KEYSPACE keep WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
        s.execute("CREATE TABLE keep.t (k int, c int, v text, l list<int>, PRIMARY KEY (k, c)) WITH default_time_to_live = 0")
        s.execute("CREATE TABLE keep.n (k int PRIMARY KEY, hits counter)")
        for i in range(50):
            s.execute("INSERT INTO keep.t (k, c, v, l) VALUES (%s, %s, %s, [1, 2]) USING TIMESTAMP 777",
                      (i % 5, i, f"v{i}"))
        s.execute("UPDATE keep.t SET l = l + [3] WHERE k = 0 AND c = 0")
        s.execute("DELETE FROM keep.t WHERE k = 4")
        s.execute("UPDATE keep.n SET hits = hits + 3 WHERE k = 1")
        s.execute("ALTER TABLE keep.t ADD extra text")
        s.execute("UPDATE keep.t SET extra = 'x' WHERE k = 1 AND c = 1")
        c.shutdown()
        check(stop(proc) == 0, "persistence: SIGTERM exits 0")

        proc, log2 = start(PERSIST_PORT, "--data-dir", data, log_name="zdm-persist")
        c = Cluster(contact_points=[NODES[0]], port=PERSIST_PORT,
                    execution_profiles={EXEC_PROFILE_DEFAULT: ExecutionProfile(load_balancing_policy=RoundRobinPolicy())})
        s = c.connect()
        rows = list(s.execute("SELECT k, c, v, l, writetime(v) FROM keep.t"))
        check(len(rows) == 40 and all(r.writetime_v == 777 for r in rows) and
              next(list(r.l) for r in rows if r.c == 0) == [1, 2, 3] and
              s.execute("SELECT hits FROM keep.n WHERE k = 1").one().hits == 3 and
              s.execute("SELECT extra FROM keep.t WHERE k = 1 AND c = 1").one().extra == "x",
              f"persistence: after a restart, rows, write times, collections, deletions, counters are kept ({len(rows)} rows)")
        s.execute("INSERT INTO keep.t (k, c, v) VALUES (9, 9, 'after-restart')")
        s.execute("ALTER TABLE keep.t DROP l")
        c.shutdown()
        stop(proc, "kill")  # no final snapshot: the log alone must have it

        proc, log3 = start(PERSIST_PORT, "--data-dir", data, log_name="zdm-persist")
        c = Cluster(contact_points=[NODES[0]], port=PERSIST_PORT,
                    execution_profiles={EXEC_PROFILE_DEFAULT: ExecutionProfile(load_balancing_policy=RoundRobinPolicy())})
        s = c.connect()
        check(s.execute("SELECT v FROM keep.t WHERE k = 9 AND c = 9").one().v == "after-restart" and
              s.execute("SELECT count(*) FROM keep.t").one()[0] == 41 and
              "l" not in s.execute("SELECT * FROM keep.t LIMIT 1").column_names,
              "persistence: a SIGKILLed process replays its log (rows and an ALTER TABLE)")
        c.shutdown()
        stop(proc)
        for lg in (log, log2, log3):
            lg.close()
            os.unlink(lg.name)


def main():
    started = time.monotonic()
    proc, log = start(PORT, "--prepared-per-node", "--admin", ADMIN)
    ok = False
    try:
        profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), retry_policy=FallthroughRetryPolicy())
        cluster = Cluster(contact_points=[NODES[0]], port=PORT, reprepare_on_up=False,
                          execution_profiles={EXEC_PROFILE_DEFAULT: profile})
        session = cluster.connect()
        check(wait_hosts_up(cluster), "3 hosts up")
        guide_statements(session)
        write_times(session, cluster)
        tokens(session)
        collections(session)
        counters(session)
        lwt(session)
        queries(session)
        tracing(session, cluster)
        check(not collector.records, "no driver warnings or errors before the faults: " + "; ".join(collector.records))
        faults(cluster, session)
        cluster.shutdown()
        persistence()
        ok = True
    finally:
        rc = stop(proc)
        check(ok and rc == 0, f"zdm-testcluster exits 0 on SIGTERM (rc={rc})")
        log.close()
        if check.failures:
            print("---- zdm-testcluster log (tail) ----")
            print(open(log.name).read()[-6000:])
        os.unlink(log.name)
    print(f"runtime {time.monotonic() - started:.1f} s")
    print(check.summary())
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
