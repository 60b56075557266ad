#!/usr/bin/python3
"""zdm-proxy with the real DataStax python-driver, between two zdm-testcluster clusters.

Starts origin (127.11.2.1-2) and target (127.11.3.1-2) clusters and one proxy
(127.11.1.1:19042, metrics :19001), all on ports of this test's own (ZDM_TEST_NET replaces
127.11, e.g. for a sanitizer build run beside the normal one). Asserts:
- the driver connects through the proxy with default settings and no error logs;
- writes (simple, prepared, batch) land in both clusters, read directly from each;
- reads go to the primary only, and the proxy's metrics say so;
- a malformed frame gets a PROTOCOL_ERROR and closes only that connection: the driver's
  session keeps working;
- SIGTERM stops the proxy with exit code 0.
Processes started here are stopped by pid at the end.
"""
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import urllib.request

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "build")
TESTCLUSTER = os.path.join(BUILD, "testcluster", "zdm-testcluster")
PROXY = os.path.join(BUILD, "proxy", "zdm-proxy")
NET = os.environ.get("ZDM_TEST_NET", "127.11")
ORIGIN = [f"{NET}.2.1", f"{NET}.2.2"]
TARGET = [f"{NET}.3.1", f"{NET}.3.2"]
PROXY_IP, CQL_PORT, PROXY_PORT, METRICS_PORT = f"{NET}.1.1", 19043, 19042, 19001

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Checks, DriverLogCollector, wait_port  # noqa: E402

procs = []
check = Checks()
failures = check.failures


def metric_sum(prefix, label=""):
    with urllib.request.urlopen(f"http://{PROXY_IP}:{METRICS_PORT}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(prefix) and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    tmp = tempfile.mkdtemp(prefix="zdm-proxy-test-")
    for name, nodes in (("origin", ORIGIN), ("target", TARGET)):
        log = open(os.path.join(tmp, f"{name}.log"), "w")
        procs.append(subprocess.Popen([TESTCLUSTER, "--cluster-name", name, "--nodes", ",".join(nodes),
                                       "--port", str(CQL_PORT)], stdout=log, stderr=log))
    for ip in ORIGIN + TARGET:
        assert wait_port(ip, CQL_PORT), f"test cluster {ip} did not start"
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
""")
    proxy_log = open(os.path.join(tmp, "proxy.log"), "w")
    proxy = subprocess.Popen([PROXY, "--config", config], stdout=proxy_log, stderr=proxy_log)
    procs.append(proxy)
    assert wait_port(PROXY_IP, PROXY_PORT), "proxy did not start listening"

    from cassandra.cluster import Cluster
    from cassandra.query import BatchStatement

    errors = DriverLogCollector()
    logging.getLogger("cassandra").addHandler(errors)
    cluster = Cluster(contact_points=[PROXY_IP], port=PROXY_PORT)
    session = cluster.connect()
    check(cluster.protocol_version == 5, f"driver negotiated protocol v5 through the proxy (got v{cluster.protocol_version})")
    hosts = [h.address for h in cluster.metadata.all_hosts()]
    check(hosts == [PROXY_IP], f"driver sees only the proxy as a host ({hosts})")

    session.execute("CREATE KEYSPACE IF NOT EXISTS zdm_it WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE IF NOT EXISTS zdm_it.kv (k int, c int, v text, PRIMARY KEY (k, c))")
    session.execute("INSERT INTO zdm_it.kv (k, c, v) VALUES (1, 1, 'simple')")
    ins = session.prepare("INSERT INTO zdm_it.kv (k, c, v) VALUES (?, ?, ?)")
    for i in range(50):
        session.execute(ins, (2, i, f"prepared-{i}"))
    batch = BatchStatement()
    for i in range(5):
        batch.add(ins, (3, i, f"batch-{i}"))
    session.execute(batch)

    reads_origin_before = metric_sum("zdm_proxy_request_duration_seconds_count", 'type="reads_origin"')
    sel = session.prepare("SELECT v FROM zdm_it.kv WHERE k = ? AND c = ?")
    got = [session.execute(sel, (2, i)).one().v for i in range(50)]
    check(got == [f"prepared-{i}" for i in range(50)], "prepared reads through the proxy return what was written")
    reads_origin = metric_sum("zdm_proxy_request_duration_seconds_count", 'type="reads_origin"') - reads_origin_before
    reads_target = metric_sum("zdm_proxy_request_duration_seconds_count", 'type="reads_target"')
    check(reads_origin >= 50 and reads_target == 0,
          f"reads went to origin only (reads_origin +{reads_origin:.0f}, reads_target {reads_target:.0f})")
    writes = metric_sum("zdm_proxy_request_duration_seconds_count", 'type="writes"')
    # 2 DDL + 1 simple INSERT + 50 prepared INSERTs + 1 BATCH
    check(writes == 54, f"every write counted once (writes {writes:.0f})")
    check(metric_sum("zdm_pscache_entries_total") >= 2, "prepared statements cached")

    # Each cluster read directly, not through the proxy.
    for name, nodes in (("origin", ORIGIN), ("target", TARGET)):
        direct = Cluster(contact_points=nodes, port=CQL_PORT)
        s = direct.connect()
        rows = {(r.k, r.c): r.v for r in s.execute("SELECT k, c, v FROM zdm_it.kv")}
        direct.shutdown()
        expected = {(1, 1): "simple", **{(2, i): f"prepared-{i}" for i in range(50)},
                    **{(3, i): f"batch-{i}" for i in range(5)}}
        check(rows == expected, f"{name} holds exactly the 56 rows written through the proxy ({len(rows)})")

    # A malformed frame: body length beyond the limit before STARTUP.
    raw = socket.create_connection((PROXY_IP, PROXY_PORT), timeout=5)
    raw.sendall(struct.pack(">BBhBi", 4, 0, 7, 0x05, 0x7FFFFFF0))
    data = b""
    try:
        while True:
            chunk = raw.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    raw.close()
    ok = len(data) >= 13 and data[0] == 0x84 and data[4] == 0x00 and struct.unpack(">i", data[9:13])[0] == 0x000A
    check(ok, f"malformed frame answered with PROTOCOL_ERROR and the connection closed ({data[:40]!r})")
    check(session.execute(sel, (1, 1)).one().v == "simple", "the driver's session still works after the bad client")
    # An unsupported protocol version is refused on its stream, so drivers can downgrade.
    raw = socket.create_connection((PROXY_IP, PROXY_PORT), timeout=5)
    raw.sendall(struct.pack(">BBhBi", 0x42, 0, 3, 0x05, 0))
    data = raw.recv(4096)
    raw.close()
    check(len(data) > 13 and struct.unpack(">h", data[2:4])[0] == 3 and data[4] == 0
          and b"unsupported protocol version (66); the lowest supported version is 3 and the greatest is 5" in data,
          f"protocol v0x42 (above what the clusters speak) refused with PROTOCOL_ERROR on stream 3 ({data[9:120]!r})")

    cluster.shutdown()
    logging.getLogger("cassandra").removeHandler(errors)
    check(not errors.records, f"no driver warnings or errors ({errors.records[:3]})")

    # Graceful shutdown: 400 pipelined INSERTs in one write, then SIGTERM at once. Every
    # request the proxy took in must be answered before it closes, so the rows on each cluster
    # equal the RESULTs the client got, and every response is a whole frame.
    raw = socket.create_connection((PROXY_IP, PROXY_PORT), timeout=10)
    raw.sendall(frame(0, 0x01, string_map({"CQL_VERSION": "3.0.0"})))
    reply = read_frames(raw, 1)
    check(reply and reply[0][1] == 0x02, "raw client handshake: READY")
    n = 400
    batch = b"".join(frame(i + 1, 0x07, long_string(f"INSERT INTO zdm_it.kv (k, c, v) VALUES (9, {i}, 'x')")
                           + struct.pack(">HB", 0x0001, 0)) for i in range(n))
    raw.sendall(batch)
    proxy.send_signal(signal.SIGTERM)
    responses = read_frames(raw, n)
    raw.close()
    try:
        rc = proxy.wait(timeout=20)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, f"proxy exits 0 on SIGTERM (got {rc})")
    results = sum(1 for _, op in responses if op == 0x08)
    check(results == len(responses) and results > 0,
          f"in-flight requests answered during shutdown: {results} RESULTs of {n} sent, no errors")
    for name, nodes in (("origin", ORIGIN), ("target", TARGET)):
        direct = Cluster(contact_points=nodes, port=CQL_PORT)
        rows = direct.connect().execute("SELECT count(*) FROM zdm_it.kv WHERE k = 9").one()[0]
        direct.shutdown()
        check(rows == results, f"{name} has exactly the {results} rows whose writes were acknowledged ({rows})")
    return 0


def frame(stream, opcode, body):
    return struct.pack(">BBhBi", 4, 0, stream, opcode, len(body)) + body


def string_map(m):
    out = struct.pack(">H", len(m))
    for k, v in m.items():
        out += struct.pack(">H", len(k)) + k.encode() + struct.pack(">H", len(v)) + v.encode()
    return out


def long_string(s):
    return struct.pack(">i", len(s)) + s.encode()


def read_frames(sock, count):
    """Reads up to `count` whole frames (stream, opcode) until EOF; a partial frame is dropped."""
    buf, out = b"", []
    while len(out) < count:
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 9:
            length = struct.unpack(">i", buf[5:9])[0]
            if len(buf) < 9 + length:
                break
            out.append((struct.unpack(">h", buf[2:4])[0], buf[4]))
            buf = buf[9 + length:]
    return out


if __name__ == "__main__":
    try:
        rc = main()
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
