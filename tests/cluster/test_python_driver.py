#!/usr/bin/python3
"""zdm-testcluster with the real DataStax python-driver (default Cluster(), schema metadata on).

Usage: /usr/bin/python3 test_python_driver.py [path/to/zdm-testcluster]
Starts a 3-node cluster on 127.12.2.1-3:19042 (not the sandbox's addresses), drives it with the
driver, and fails on any WARNING/ERROR from the `cassandra` logger except the two the driver
always emits against a Cassandra 3.11 with a default Cluster() (see ALLOWED_WARNINGS).
"""
import datetime
import decimal
import logging
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BINARY = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "testcluster", "zdm-testcluster")
NODES = ["127.12.2.1", "127.12.2.2", "127.12.2.3"]
PORT = 19042

sys.path.insert(0, os.path.join(ROOT, "tests", "drivers"))
from harness import Checks, DriverLogCollector, wait_port  # noqa: E402

logging.basicConfig(level=logging.WARNING)
collector = DriverLogCollector()
logging.getLogger("cassandra").addHandler(collector)

from cassandra import AlreadyExists, InvalidRequest, ProtocolVersion  # noqa: E402
from cassandra.cluster import Cluster  # noqa: E402
from cassandra.query import BatchStatement, BatchType, SimpleStatement  # noqa: E402

check = Checks()
failures = check.failures


def host_of(cluster, address):
    for h in cluster.metadata.all_hosts():
        if h.address == address:
            return h
    raise AssertionError(f"no host {address}")


# ---- raw frames ----

def frame(version, stream, opcode, body=b"", flags=0):
    return struct.pack(">BBhBI", version, flags, stream, opcode, len(body)) + body


def long_string(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b


def string_map(m):
    out = struct.pack(">H", len(m))
    for k, v in m.items():
        out += struct.pack(">H", len(k)) + k.encode() + struct.pack(">H", len(v)) + v.encode()
    return out


def read_frame(sock, timeout=5.0):
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < 9:
        chunk = sock.recv(9 - len(buf))
        if not chunk:
            return None
        buf += chunk
    version, flags, stream, opcode, length = struct.unpack(">BBhBI", buf)
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return version, stream, opcode, body


def error_of(body):
    code = struct.unpack(">i", body[:4])[0]
    n = struct.unpack(">H", body[4:6])[0]
    return code, body[6:6 + n].decode()


def raw_checks():
    # Unsupported versions are refused on the request's stream with Cassandra 4's wording, then
    # the connection closes (the driver retries lower on a new one).
    for version, header_v in ((0x42, 0x84), (6, 0x84)):
        with socket.create_connection((NODES[1], PORT), timeout=5) as s:
            s.sendall(frame(version, 3, 0x05))
            v, stream, op, body = read_frame(s)
            code, msg = error_of(body)
            check(op == 0x00 and stream == 3 and code == 0x000A and v == header_v and
                  msg == f"Invalid or unsupported protocol version ({version}); supported versions "
                         "are (3/v3, 4/v4, 5/v5)",
                  f"version {version:#x} refused: v={v:#x} stream={stream} code={code:#x} {msg!r}")
            check(read_frame(s, timeout=5) is None, f"connection closed after refusing {version:#x}")
    # v1/v2 headers are 8 bytes (one-byte stream id): refused at once, in a v1/v2 header.
    for version in (1, 2):
        with socket.create_connection((NODES[1], PORT), timeout=5) as s:
            s.sendall(struct.pack(">BBbBi", version, 0, 5, 0x05, 0))
            s.settimeout(5)
            data = s.recv(4096)
            ok = len(data) > 8 and data[0] == 0x80 | version and data[2] == 5 and data[3] == 0x00
            code = struct.unpack(">i", data[8:12])[0] if ok else None
            check(ok and code == 0x000A and b"unsupported protocol version (%d)" % version in data,
                  f"v{version} refused at once with a v{version} header: {data[:40]!r}")

    # Pipelined: STARTUP, a malformed QUERY, then a good QUERY, all in one write.
    with socket.create_connection((NODES[1], PORT), timeout=5) as s:
        bad = frame(4, 7, 0x07, struct.pack(">I", 100) + b"SELECT")  # long string longer than body
        good = frame(4, 8, 0x07, long_string("SELECT key FROM system.local") + struct.pack(">HB", 1, 0))
        s.sendall(frame(4, 1, 0x01, string_map({"CQL_VERSION": "3.0.0"})) + bad + good)
        r1, r2, r3 = read_frame(s), read_frame(s), read_frame(s)
        check(r1 is not None and r1[2] == 0x02 and r1[1] == 1, "STARTUP -> READY")
        check(r2 is not None and r2[1] == 7 and r2[2] == 0x00 and error_of(r2[3])[0] == 0x000A,
              f"malformed QUERY body -> PROTOCOL_ERROR on its stream: {r2 and error_of(r2[3])}")
        check(r3 is not None and r3[1] == 8 and r3[2] == 0x08, "next frame on the same connection answered")
        # OPTIONS lists COMPRESSION (the driver indexes it).
        s.sendall(frame(4, 9, 0x05))
        r = read_frame(s)
        check(r is not None and r[2] == 0x06 and b"COMPRESSION" in r[3], "OPTIONS -> SUPPORTED with COMPRESSION")

    # A corrupt header (body length over the limit) gets a PROTOCOL_ERROR, then that connection
    # closes (and only that one).
    with socket.create_connection((NODES[2], PORT), timeout=5) as s:
        s.sendall(struct.pack(">BBhBI", 4, 0, 1, 0x07, 0x7FFFFFFF))
        r = read_frame(s, timeout=5)
        check(r is not None and r[2] == 0x00 and error_of(r[3])[0] == 0x000A
              and "frame body too large" in error_of(r[3])[1], f"corrupt header -> PROTOCOL_ERROR ({r})")
        closed = False
        try:
            closed = read_frame(s, timeout=5) is None
        except (ConnectionResetError, socket.timeout):
            closed = True
        check(closed, "corrupt header closes the connection")


def main():
    log = tempfile.NamedTemporaryFile(prefix="zdm-testcluster-", suffix=".log", delete=False)
    proc = subprocess.Popen([BINARY, "--cluster-name", "pytest", "--nodes", ",".join(NODES),
                             "--port", str(PORT), "--log-level", "info"],
                            stdout=log, stderr=log)
    try:
        for ip in NODES:
            assert wait_port(ip, PORT), f"zdm-testcluster did not listen on {ip}:{PORT}"
        run()
    finally:
        proc.terminate()
        try:
            rc = proc.wait(timeout=10)
            check(rc == 0, f"zdm-testcluster exits 0 on SIGTERM (rc={rc})")
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
            check(False, "zdm-testcluster exits on SIGTERM")
        log.close()
        if failures:
            print("---- zdm-testcluster log ----")
            print(open(log.name).read()[-4000:])
        os.unlink(log.name)
    check(not collector.records, "no driver warnings or errors: " + "; ".join(collector.records))
    print(check.summary())
    if failures:
        sys.exit(1)


def run():
    cluster = Cluster(contact_points=[NODES[0]], port=PORT)
    session = cluster.connect()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
            len(cluster.metadata.all_hosts()) == 3 and all(h.is_up for h in cluster.metadata.all_hosts())):
        time.sleep(0.1)
    hosts = cluster.metadata.all_hosts()
    check(sorted(h.address for h in hosts) == NODES and all(h.is_up for h in hosts), "3 hosts discovered and up")
    check(cluster.protocol_version == 5, f"negotiated protocol v5 (got {cluster.protocol_version})")
    check(cluster.metadata.cluster_name == "pytest", "cluster_name from system.local")
    check(len(set(h.host_id for h in hosts)) == 3, "distinct host ids")
    check(cluster.metadata.token_map is not None and len(cluster.metadata.token_map.ring) >= 24,
          "token map built from tokens")
    h1, h2, h3 = (host_of(cluster, ip) for ip in NODES)

    session.execute("CREATE KEYSPACE zks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    try:
        session.execute("CREATE KEYSPACE zks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
        check(False, "CREATE existing keyspace fails")
    except AlreadyExists:
        check(True, "CREATE existing keyspace -> AlreadyExists")
    session.execute("CREATE KEYSPACE IF NOT EXISTS zks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    session.execute("""
        CREATE TABLE zks.all_types (
            id int, name text, ck bigint,
            a ascii, u uuid, tu timeuuid, ts timestamp, flag boolean, d double, f float, b blob,
            ip inet, dt date, tm time, vi varint, dec decimal, si smallint, ti tinyint,
            tags set<text>, nums list<int>, attrs map<text, int>,
            PRIMARY KEY ((id, name), ck)
        ) WITH CLUSTERING ORDER BY (ck DESC) AND comment = 'all types'""")
    check(cluster.control_connection.wait_for_schema_agreement(), "schema agreement")
    meta = cluster.metadata.keyspaces["zks"].tables["all_types"]
    check([c.name for c in meta.partition_key] == ["id", "name"], "partition key (id, name)")
    check([c.name for c in meta.clustering_key] == ["ck"], "clustering key ck")
    check(meta.columns["tags"].cql_type == "set<text>" and meta.columns["attrs"].cql_type == "map<text, int>"
          and meta.columns["dec"].cql_type == "decimal" and len(meta.columns) == 21, "column types in metadata")
    check(cluster.metadata.keyspaces["zks"].replication_strategy.replication_factor == 3, "keyspace replication")

    # Prepared INSERT through node 1, read through node 2 and 3.
    ins = session.prepare("INSERT INTO zks.all_types (id, name, ck, a, u, tu, ts, flag, d, f, b, ip, dt, tm, vi, dec,"
                          " si, ti, tags, nums, attrs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    check(ins.routing_key_indexes == [0, 1], f"pk_indices of prepared INSERT: {ins.routing_key_indexes}")
    u, tu = uuid.uuid4(), uuid.uuid1()
    ts = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000)
    values = (1, "alice", 10, "asc", u, tu, ts, True, 1.5, 2.5, b"\x00\x01", "10.1.2.3",
              datetime.date(2024, 1, 2), datetime.time(1, 2, 3, 4000), 12345678901234567890123,
              decimal.Decimal("123.4500"), -7, 5, {"x", "y"}, [3, 1, 2], {"k": 1})
    session.execute(ins, values, host=h1)
    sel = session.prepare("SELECT * FROM zks.all_types WHERE id = ? AND name = ? AND ck = ?")
    check(sel.routing_key_indexes == [0, 1], "pk_indices of prepared SELECT")
    for h in (h2, h3):
        row = session.execute(sel, (1, "alice", 10), host=h).one()
        got = (row.id, row.name, row.ck, row.a, row.u, row.tu, row.ts, row.flag, row.d, row.f, row.b,
               row.ip, row.dt.date(), row.tm.time(), row.vi, row.dec, row.si, row.ti, set(row.tags),
               list(row.nums), dict(row.attrs))
        check(got == values, f"prepared round trip via {h.address}: {got}")

    # Literals in simple statements.
    session.execute("INSERT INTO zks.all_types (id, name, ck, a, u, tu, ts, flag, d, f, b, ip, dt, tm, vi, dec,"
                    " si, ti, tags, nums, attrs) VALUES (2, 'bob''s', 20, 'x', "
                    "5b6962dd-3f90-4c93-8f61-eabfa4a803e2, now(), '2024-05-06 07:08:09.123+0000', false, -1.25,"
                    " 3.5, 0xcafe, '::1', '2020-02-29', '13:14:15.5', -42, -0.5, 300, -128, {'b', 'a'},"
                    " [7], {'z': -1, 'a': 2}) USING TTL 100", host=h2)
    row = session.execute("SELECT * FROM zks.all_types WHERE id = 2 AND name = 'bob''s'", host=h3).one()
    check(row is not None and row.name == "bob's" and row.u == uuid.UUID("5b6962dd-3f90-4c93-8f61-eabfa4a803e2")
          and row.tu.version == 1 and row.ts == ts and row.flag is False and row.d == -1.25 and row.f == 3.5
          and row.b == b"\xca\xfe" and row.ip == "::1" and str(row.dt) == "2020-02-29"
          and row.tm.time() == datetime.time(13, 14, 15, 500000) and row.vi == -42
          and row.dec == decimal.Decimal("-0.5") and row.si == 300 and row.ti == -128
          and list(row.tags) == ["a", "b"] and list(row.nums) == [7] and dict(row.attrs) == {"a": 2, "z": -1},
          f"literal round trip: {row}")
    try:
        session.execute("INSERT INTO zks.all_types (id, name, ck) VALUES ('x', 'a', 1)")
        check(False, "bad literal type rejected")
    except InvalidRequest:
        check(True, "bad literal type -> InvalidRequest")
    try:
        session.execute("SELECT * FROM zks.nope")
        check(False, "unknown table rejected")
    except InvalidRequest as e:
        check("unconfigured table nope" in str(e), "unknown table -> unconfigured table")

    # Batches: logged with prepared children, unlogged, and BEGIN BATCH text.
    session.execute("CREATE TABLE zks.kv (k int, c int, v text, PRIMARY KEY (k, c))")
    pins = session.prepare("INSERT INTO zks.kv (k, c, v) VALUES (?, ?, ?)")
    b = BatchStatement(batch_type=BatchType.LOGGED)
    for c in range(3):
        b.add(pins, (1, c, f"l{c}"))
    b.add("UPDATE zks.kv SET v = %s WHERE k = %s AND c = %s", ("l-upd", 1, 2))
    session.execute(b, host=h1)
    b = BatchStatement(batch_type=BatchType.UNLOGGED)
    b.add(pins, (2, 0, "u0"))
    b.add(SimpleStatement("INSERT INTO zks.kv (k, c, v) VALUES (2, 1, 'u1')"))
    session.execute(b, host=h2)
    session.execute("BEGIN UNLOGGED BATCH INSERT INTO zks.kv (k, c, v) VALUES (3, 0, 't0'); "
                    "INSERT INTO zks.kv (k, c, v) VALUES (3, 1, 't1') APPLY BATCH")
    rows = sorted((r.k, r.c, r.v) for r in session.execute("SELECT * FROM zks.kv", host=h3))
    # The logged batch's INSERT (1, 2, 'l2') and UPDATE ... 'l-upd' share the batch's write time:
    # as in Cassandra, the greater value wins the tie ('l2' > 'l-upd').
    check(rows == [(1, 0, "l0"), (1, 1, "l1"), (1, 2, "l2"), (2, 0, "u0"), (2, 1, "u1"), (3, 0, "t0"), (3, 1, "t1")],
          f"batches visible through another node: {rows}")

    # LWT.
    r = session.execute("INSERT INTO zks.kv (k, c, v) VALUES (9, 9, 'first') IF NOT EXISTS")
    check(r.was_applied, "INSERT IF NOT EXISTS applied")
    r = session.execute("INSERT INTO zks.kv (k, c, v) VALUES (9, 9, 'second') IF NOT EXISTS", host=h2)
    check(not r.was_applied and r.one().v == "first", "second INSERT IF NOT EXISTS not applied, returns row")
    r = session.execute("UPDATE zks.kv SET v = 'x' WHERE k = 99 AND c = 1 IF EXISTS")
    check(not r.was_applied, "UPDATE IF EXISTS on a missing row not applied")
    r = session.execute("UPDATE zks.kv SET v = 'upd' WHERE k = 9 AND c = 9 IF EXISTS")
    check(r.was_applied, "UPDATE IF EXISTS applied")

    # DELETE, read through another node.
    session.execute("DELETE FROM zks.kv WHERE k = 9 AND c = 9", host=h1)
    check(session.execute("SELECT * FROM zks.kv WHERE k = 9 AND c = 9", host=h3).one() is None, "DELETE row")
    session.execute("DELETE v FROM zks.kv WHERE k = 1 AND c = 0")
    check(session.execute("SELECT v FROM zks.kv WHERE k = 1 AND c = 0", host=h2).one().v is None, "DELETE column")
    session.execute("DELETE FROM zks.kv WHERE k = 3")
    check(session.execute("SELECT count(*) FROM zks.kv WHERE k = 3").one()[0] == 0, "DELETE partition")

    # Paging over 12k rows with the default fetch size (5000).
    session.execute("CREATE TABLE zks.big (p int, c int, v text, PRIMARY KEY (p, c))")
    pbig = session.prepare("INSERT INTO zks.big (p, c, v) VALUES (?, ?, ?)")
    from cassandra.concurrent import execute_concurrent_with_args
    results = execute_concurrent_with_args(session, pbig, [(i % 3, i, f"v{i}") for i in range(12000)],
                                           concurrency=100)
    check(all(ok for ok, _ in results), "12000 concurrent prepared inserts")
    rs = session.execute(SimpleStatement("SELECT * FROM zks.big"), host=h2)
    first_page = len(rs.current_rows)
    seen = [(r.p, r.c) for r in rs]
    # Partitions in token order (Murmur3 of the key), rows by clustering key within each.
    from cassandra.murmur3 import murmur3
    token_order = sorted(range(3), key=lambda p: murmur3(struct.pack(">i", p)))
    expected = [(p, c) for p in token_order for c in range(p, 12000, 3)]
    check(first_page == 5000 and seen == expected,
          f"paged full scan: first page {first_page}, {len(seen)} rows in token order")
    psel = session.prepare("SELECT c, v AS value FROM zks.big WHERE p = ?")
    psel.fetch_size = 1500
    rs = session.execute(psel, (1,), host=h3)
    got = [(r.c, r.value) for r in rs]
    check(len(got) == 4000 and got[0] == (1, "v1") and got[-1] == (11998, "v11998"),
          f"paged partition via prepared SELECT with alias: {len(got)} rows")
    check(session.execute("SELECT count(*) FROM zks.big").one().count == 12000, "count(*)")
    lim = list(session.execute(SimpleStatement("SELECT * FROM zks.big LIMIT 7000", fetch_size=5000)))
    check(len(lim) == 7000, f"LIMIT across pages: {len(lim)}")
    rng = [r.c for r in session.execute("SELECT c FROM zks.big WHERE p = 0 AND c >= 30 AND c < 40")]
    check(rng == [30, 33, 36, 39], f"clustering range: {rng}")
    inq = session.execute("SELECT p, c FROM zks.big WHERE p IN (2, 0) AND c IN (0, 2, 5)")
    check([(r.p, r.c) for r in inq] == [(0, 0), (2, 2), (2, 5)], "IN on partition and clustering key")

    # USE and unqualified names; a second session keeps its own keyspace.
    session.execute("USE zks")
    check(session.execute("SELECT v FROM kv WHERE k = 2 AND c = 0").one().v == "u0", "USE then unqualified SELECT")
    s2 = cluster.connect("zks")
    check(s2.execute("SELECT count(*) FROM kv").one()[0] == 5, "connect(keyspace)")
    try:
        session.execute("USE nope")
        check(False, "USE unknown keyspace fails")
    except InvalidRequest:
        check(True, "USE unknown keyspace -> InvalidRequest")

    # Named bind markers and a prepared statement with :names.
    pn = session.prepare("SELECT v FROM zks.kv WHERE k = :key AND c = :col")
    check(session.execute(pn, {"key": 1, "col": 1}).one().v == "l1", "named bind markers")

    # Bad bound value size -> InvalidRequest, server keeps serving.
    from cassandra.query import BoundStatement
    bs = BoundStatement(pins)
    bs.bind((1, 1, "x"))
    bs.values[0] = b"\x00\x01\x02"  # 3 bytes for an int
    try:
        session.execute(bs)
        check(False, "3-byte int rejected")
    except InvalidRequest as e:
        check("Expected 4 or 0 byte int" in str(e), f"3-byte int -> InvalidRequest: {e}")

    # System tables and the schema the driver sees.
    peers = session.execute("SELECT peer, host_id, rpc_address AS addr, schema_version FROM system.peers", host=h1)
    check(sorted(r.addr for r in peers) == NODES[1:], "system.peers lists the other nodes")
    versions = {session.execute("SELECT schema_version FROM system.local WHERE key='local'", host=h).one()[0]
                for h in (h1, h2, h3)}
    check(len(versions) == 1, "same schema_version on every node")
    try:
        session.execute("SELECT * FROM system.peers_v2")
        check(False, "peers_v2 absent")
    except InvalidRequest as e:
        check("unconfigured table peers_v2" in str(e), "peers_v2 -> unconfigured table")
    cols = session.execute("SELECT * FROM system_schema.columns WHERE keyspace_name = 'zks' AND table_name = 'kv'")
    check(sorted((r.column_name, r.kind, r.position) for r in cols) ==
          [("c", "clustering", 0), ("k", "partition_key", 0), ("v", "regular", -1)], "system_schema.columns")

    raw_checks()
    check(session.execute("SELECT count(*) FROM zks.kv").one()[0] == 5, "driver unaffected by raw-socket errors")

    # Protocol v3.
    c3 = Cluster(contact_points=[NODES[2]], port=PORT, protocol_version=ProtocolVersion.V3)
    s3 = c3.connect()
    p3 = s3.prepare("SELECT v FROM zks.kv WHERE k = ? AND c = ?")
    check(s3.execute(p3, (1, 2)).one().v == "l2" and c3.protocol_version == 3, "protocol v3 prepared SELECT")
    c3.shutdown()

    # DROP and TRUNCATE; metadata follows.
    session.execute("TRUNCATE zks.big")
    check(session.execute("SELECT count(*) FROM zks.big").one()[0] == 0, "TRUNCATE")
    session.execute("DROP TABLE zks.big")
    check("big" not in cluster.metadata.keyspaces["zks"].tables, "DROP TABLE reflected in metadata")
    session.execute("DROP KEYSPACE zks")
    check("zks" not in cluster.metadata.keyspaces, "DROP KEYSPACE reflected in metadata")
    session.execute("DROP KEYSPACE IF EXISTS zks")
    cluster.shutdown()


if __name__ == "__main__":
    main()
