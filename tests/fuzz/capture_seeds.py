#!/usr/bin/python3
"""Captures real CQL traffic as seeds for the codec harnesses.

Usage: /usr/bin/python3 tests/fuzz/capture_seeds.py BUILD_DIR [CORPUS_DIR]

Starts one zdm-testcluster per setup (no authentication; PasswordAuthenticator; DSE versions
with DseAuthenticator) and, in front of each, a recording relay; drives the DataStax
python-driver through the relay at every protocol version (3, 4, 5, DSE_V1, DSE_V2) and every
compression it negotiates (none, LZ4, Snappy; v5 LZ4 segments), with a workload that makes
every message kind appear (STARTUP/OPTIONS/AUTH_RESPONSE/REGISTER/QUERY/PREPARE/EXECUTE/BATCH,
custom payloads; READY/AUTHENTICATE/AUTH_SUCCESS/SUPPORTED/RESULT of each kind/ERROR/EVENT).
Writes, under CORPUS_DIR (default tests/fuzz/corpus), files named by the SHA-1 of their bytes:
  request/, response/  each frame (header + body as on the wire; v5: each envelope)
  frame/               [mode][a connection's byte stream, one direction] (fuzz_frame's format)
  segment/             [mode][the v5 segments of a connection, one direction]
  compression/         [mode][each compressed v4 body]
  classifier/          each CQL statement sent
Addresses: each cluster is one node on 127.20.2.N, port 19143; its relay listens on the same
address, port 19142, so the address the node reports (system.local) leads the driver back
through the relay. ZDM_FUZZ_NET overrides the 127.20 prefix. Every process started here is
stopped by pid.
"""
import hashlib
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import lz4.block as lz4_block

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "corpus")
TESTCLUSTER = os.path.join(BUILD, "testcluster", "zdm-testcluster")
NET = os.environ.get("ZDM_FUZZ_NET", "127.20")
PORT, NODE_PORT = 19142, 19143
MAX_STREAM = 64 * 1024  # bytes of a connection kept as one frame/segment seed

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "drivers"))
from harness import wait_port  # noqa: E402


# ---- the recording relay ----

class Relay:
    """Accepts on (ip, PORT), forwards to (ip, NODE_PORT), keeps both byte streams."""

    def __init__(self, ip):
        self.ip = ip
        self.connections = []  # [client bytes, server bytes] (bytearrays) per connection
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, PORT))
        self.sock.listen(64)
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection((self.ip, NODE_PORT), source_address=(self.ip, 0))
            streams = [bytearray(), bytearray()]
            with self.lock:
                self.connections.append(streams)
            threading.Thread(target=self.pump, args=(client, server, streams[0]), daemon=True).start()
            threading.Thread(target=self.pump, args=(server, client, streams[1]), daemon=True).start()

    @staticmethod
    def pump(src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                record += data
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self.sock.close()


# ---- splitting recorded streams ----

def split_frames(data):
    """Whole v3+ frames at the start of `data`, and the offset after the last one."""
    frames, off = [], 0
    while len(data) - off >= 9:
        length = struct.unpack_from(">I", data, off + 5)[0]
        if len(data) - off - 9 < length:
            break
        frames.append(bytes(data[off:off + 9 + length]))
        off += 9 + length
    return frames, off


def split_segments(data, lz4):
    """The payloads (decompressed) of the whole v5 segments in `data`."""
    payloads, off, hsize = [], 0, 8 if lz4 else 6
    while len(data) - off >= hsize:
        header = int.from_bytes(data[off:off + hsize - 3], "little")
        length = header & 0x1FFFF
        ulen = (header >> 17) & 0x1FFFF if lz4 else 0
        if len(data) - off < hsize + length + 4:
            break
        payload = bytes(data[off + hsize:off + hsize + length])
        if ulen:
            payload = lz4_block.decompress(payload, uncompressed_size=ulen)
        payloads.append(payload)
        off += hsize + length + 4
    return payloads


def ends_handshake(frame):
    return frame[4] in (0x01, 0x02, 0x03)  # STARTUP, READY, AUTHENTICATE


class Corpus:
    def __init__(self, root):
        self.root = root
        self.count = {}

    def add(self, harness, data):
        d = os.path.join(self.root, harness)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, hashlib.sha1(data).hexdigest()[:16])
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
            self.count[harness] = self.count.get(harness, 0) + 1


def statements_of(frame):
    """The CQL text of a QUERY or PREPARE frame (uncompressed, no custom payload)."""
    version, flags, opcode = frame[0] & 0x7F, frame[1], frame[4]
    if opcode not in (0x07, 0x09) or flags & 0x05:
        return []
    n = struct.unpack_from(">i", frame, 9)[0]
    return [frame[13:13 + n]] if 0 <= n <= len(frame) - 13 else []


def harvest(corpus, client, server, v5, compression):
    """Adds one connection's two byte streams to the corpus."""
    lz4 = compression == "lz4"
    for side, data, harness in ((0, client, "request"), (1, server, "response")):
        frames, off = split_frames(data)
        if v5:
            plain = []
            for f in frames:
                plain.append(f)
                if ends_handshake(f):
                    break
            off = sum(len(f) for f in plain)
            frames = plain
            envelopes = []
            for p in split_segments(data[off:], lz4):
                envelopes += split_frames(p)[0]  # multi-segment envelopes are left out
            segs = bytes(data[off:off + MAX_STREAM])
            if segs:
                corpus.add("segment", bytes([1 if lz4 else 0]) + segs)
            frames = frames + envelopes
            mode = 2 if lz4 else 1
        else:
            mode = 0
        for i, f in enumerate(frames):
            corpus.add(harness, f)
            if side == 0:
                for s in statements_of(f):
                    corpus.add("classifier", s)
            if f[1] & 0x01 and not v5:  # a compressed v3/v4 body; mode bit 0: Snappy
                corpus.add("compression", bytes([1 if compression == "snappy" else 0]) + f[9:])
        corpus.add("frame", bytes([mode | (7 << 2)]) + bytes(data[:MAX_STREAM]))


# ---- the workload ----

def workload(session, ks):
    from cassandra.query import BatchStatement, BatchType, SimpleStatement

    def run(stmt, *args, **kw):
        try:
            return list(session.execute(stmt, *args, **kw))
        except Exception:  # errors are seeds too
            return None

    run(f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    run(f"USE {ks}")
    run("CREATE TABLE IF NOT EXISTS t (k int PRIMARY KEY, v text, b bigint, d double, u uuid, "
        "ts timestamp, bl blob, f boolean, l list<int>, s set<text>, m map<text, int>)")
    run("CREATE TABLE t (k int PRIMARY KEY)")  # ALREADY_EXISTS
    def prepare(text):
        try:
            return session.prepare(text)
        except Exception:
            return SimpleStatement(text)

    ins = prepare("INSERT INTO t (k, v, b, d, u, f, l, s, m) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
    for k in range(6):
        run(ins, (k, f"value {k}", k * 1000, k / 3, uuid.uuid4(), k % 2 == 0, [k, k + 1], {"a", "b"},
                  {"x": k}))
    run("INSERT INTO t (k, v) VALUES (%s, %s)", (100, "simple"))
    run("UPDATE t SET v = 'updated' WHERE k = 1")
    run("DELETE FROM t WHERE k = 5")
    batch = BatchStatement(batch_type=BatchType.LOGGED)
    batch.add(ins, (7, "batched", 7, 7.0, uuid.uuid4(), True, [7], {"c"}, {"y": 7}))
    batch.add(SimpleStatement("INSERT INTO t (k, v) VALUES (8, 'eight')"))
    run(batch)
    ub = BatchStatement(batch_type=BatchType.UNLOGGED)
    ub.add(SimpleStatement("DELETE FROM t WHERE k = 8"))
    run(ub)
    run("SELECT * FROM t")
    run(SimpleStatement("SELECT k, v FROM t", fetch_size=2))  # paging state
    sel = prepare("SELECT v, l, m FROM t WHERE k = ?")
    run(sel, (1,))
    run(f"SELECT count(*) FROM {ks}.t")
    run("SELECT * FROM system.local")
    run("SELECT peer, rpc_address FROM system.peers")
    run("SELECT keyspace_name FROM system_schema.keyspaces")
    run("SELEKT * FROM t")  # SYNTAX_ERROR
    run("SELECT * FROM no_such_table")  # INVALID
    run("INSERT INTO t (k, v) VALUES ('not an int', 1)")
    if session.cluster.protocol_version >= 4:
        run(SimpleStatement("SELECT v FROM t WHERE k = 2"), custom_payload={"zdm": b"fuzz"})
    run("ALTER TABLE t ADD extra text")
    run("CREATE TABLE IF NOT EXISTS t2 (a text, b int, c text, PRIMARY KEY (a, b))")
    run("INSERT INTO t2 (a, b, c) VALUES ('p', 1, 'x') USING TTL 100")
    run("SELECT * FROM t2 WHERE a = 'p' AND b > 0")
    run("TRUNCATE t2")
    run("DROP TABLE t2")
    run(f"DROP KEYSPACE {ks}")


def drive(contact, version, compression, auth):
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster
    from cassandra.policies import RoundRobinPolicy

    kw = {"protocol_version": version, "compression": compression or False, "port": PORT,
          "load_balancing_policy": RoundRobinPolicy(), "connect_timeout": 10,
          "control_connection_timeout": 10,
          # No schema agreement wait: with --dse-version the driver's query for it names
          # system.peers' native_transport_address, which zdm-testcluster lacks.
          "max_schema_agreement_wait": 0}
    if auth:
        kw["auth_provider"] = PlainTextAuthProvider(*auth)
    cluster = Cluster([contact], **kw)
    try:
        session = cluster.connect()
        workload(session, f"fz{abs(hash((version, compression))) % 100000}")
    except Exception as e:  # a setup the driver refuses still leaves its bytes
        print(f"capture: v{version} {compression}: {e}", file=sys.stderr)
    finally:
        cluster.shutdown()


def main():
    from cassandra import ProtocolVersion

    setups = [  # name, cluster flags, credentials, versions, N of the node's address
        ("plain", [], None, [3, 4, ProtocolVersion.V5], 1),
        ("password", ["--auth", "cassandra:cassandra"], ("cassandra", "cassandra"), [4, ProtocolVersion.V5], 2),
        ("dse", ["--protocol-versions", "3,4,dse1,dse2", "--authenticator", "dse", "--auth", "dse:dsepass",
                 "--dse-version", "6.8.50", "--release-version", "4.0.0.6850"], ("dse", "dsepass"),
         [ProtocolVersion.DSE_V1, ProtocolVersion.DSE_V2], 3),
    ]
    tmp = tempfile.mkdtemp(prefix="zdm-fuzz-seeds-")
    procs, relays = [], []
    corpus = Corpus(OUT)
    try:
        for name, flags, _, _, n in setups:
            node = f"{NET}.2.{n}"
            log = open(os.path.join(tmp, f"{name}.log"), "w")
            procs.append(subprocess.Popen([TESTCLUSTER, "--cluster-name", name, "--nodes", node,
                                           "--port", str(NODE_PORT)] + flags, stdout=log, stderr=log))
            assert wait_port(node, NODE_PORT), f"test cluster {name} did not start ({tmp}/{name}.log)"
        for name, flags, auth, versions, n in setups:
            node = f"{NET}.2.{n}"
            relay = Relay(node)
            relays.append(relay)
            for version in versions:
                v5 = version == ProtocolVersion.V5
                for compression in ([None, "lz4"] if v5 else [None, "lz4", "snappy"]):
                    drive(node, version, compression, auth)
                    time.sleep(0.2)
                    with relay.lock:
                        connections, relay.connections = relay.connections, []
                    for client, server in connections:
                        harvest(corpus, bytes(client), bytes(server), v5, compression)
                    print(f"capture: {name} v{version} {compression or 'none'}: "
                          f"{len(connections)} connections", flush=True)
    finally:
        for r in relays:
            r.close()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    print("capture: new seeds " + ", ".join(f"{k} {v}" for k, v in sorted(corpus.count.items())))


if __name__ == "__main__":
    main()
