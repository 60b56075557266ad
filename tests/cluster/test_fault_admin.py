#!/usr/bin/python3
"""zdm-testcluster's fault admin with the real DataStax python-driver: a node stopped as a
Cassandra node is stopped.

Usage: /usr/bin/python3 test_fault_admin.py [path/to/zdm-testcluster]
A 3-node cluster on 127.18.2.1-3:19042 (an address plan of this test's own) with its admin on
127.18.2.1:19180:
- GET /nodes lists the three nodes up;
- POST /nodes/127.18.2.2/stop: that node's port closes; in a keyspace with replication factor 1,
  writes at consistency ONE fail with Unavailable(required 1, alive 0) exactly for the partitions
  the driver's own token map places on 127.18.2.2 (so the ring and its Murmur3 tokens are the
  driver's), and succeed for every other partition; a full scan fails;
- POST /nodes/127.18.2.2/start: the port answers again and every write succeeds;
- an unknown node or path is a 404.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BINARY = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "testcluster", "zdm-testcluster")
NODES = ["127.18.2.1", "127.18.2.2", "127.18.2.3"]
PORT, ADMIN = 19042, "127.18.2.1:19180"

sys.path.insert(0, os.path.join(ROOT, "tests", "drivers"))
from harness import Checks, wait_port  # noqa: E402

from cassandra import ConsistencyLevel, Unavailable  # noqa: E402
from cassandra.cluster import Cluster, NoHostAvailable  # noqa: E402
from cassandra.query import SimpleStatement  # noqa: E402

check = Checks()


def admin(method, path):
    req = urllib.request.Request(f"http://{ADMIN}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def port_open(host):
    try:
        with socket.create_connection((host, PORT), timeout=1):
            return True
    except OSError:
        return False


def main():
    log = tempfile.NamedTemporaryFile(prefix="zdm-fault-admin-", suffix=".log", delete=False)
    proc = subprocess.Popen([BINARY, "--nodes", ",".join(NODES), "--port", str(PORT), "--admin", ADMIN],
                            stdout=log, stderr=subprocess.STDOUT)
    cluster = None
    try:
        if not check(all(wait_port(n, PORT) for n in NODES) and wait_port(*ADMIN.split(":")),
                     "cluster and admin listen"):
            return 1
        status, body = admin("GET", "/nodes")
        check(status == 200 and json.loads(body) == [{"address": n, "up": True} for n in NODES],
              f"GET /nodes: three nodes up ({body})")

        cluster = Cluster(NODES, port=PORT)
        session = cluster.connect()
        session.execute("CREATE KEYSPACE fa WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
        session.execute("CREATE TABLE fa.t (id int PRIMARY KEY, v text)")
        insert = session.prepare("INSERT INTO fa.t (id, v) VALUES (?, ?)")
        insert.consistency_level = ConsistencyLevel.ONE
        for i in range(90):
            session.execute(insert, (i, "before"))
        cluster.refresh_schema_metadata()
        owner = {i: cluster.metadata.get_replicas("fa", insert.bind((i, "")).routing_key)[0].address
                 for i in range(90)}
        on_stopped = {i for i, a in owner.items() if a == NODES[1]}
        check(10 < len(on_stopped) < 60, f"the driver's token map puts {len(on_stopped)} of 90 partitions on {NODES[1]}")

        status, body = admin("POST", f"/nodes/{NODES[1]}/stop")
        check(status == 200 and {"address": NODES[1], "up": False} in json.loads(body),
              f"POST /nodes/{NODES[1]}/stop ({status} {body})")
        time.sleep(0.3)
        check(not port_open(NODES[1]) and port_open(NODES[0]), f"{NODES[1]}:{PORT} no longer answers; the others do")

        failed, wrong = set(), []
        for i in range(90):
            try:
                session.execute(insert, (i, "during"))
            except Unavailable as e:
                failed.add(i)
                if (e.required_replicas, e.alive_replicas, e.consistency) != (1, 0, ConsistencyLevel.ONE):
                    wrong.append(str(e))
            except NoHostAvailable as e:
                for err in e.errors.values():
                    if isinstance(err, Unavailable):
                        failed.add(i)
                        break
                else:
                    wrong.append(str(e))
        check(failed == on_stopped and not wrong,
              f"Unavailable(ONE, required 1, alive 0) for exactly the stopped node's partitions "
              f"({len(failed)} failed, {len(on_stopped)} expected, unexpected: {wrong[:2]})")
        try:
            session.execute(SimpleStatement("SELECT * FROM fa.t", consistency_level=ConsistencyLevel.ONE))
            check(False, "a full scan fails while a range has no live replica")
        except (Unavailable, NoHostAvailable) as e:
            check(True, f"a full scan fails while a range has no live replica ({type(e).__name__})")

        status, body = admin("POST", f"/nodes/{NODES[1]}/start")
        check(status == 200 and all(n["up"] for n in json.loads(body)), f"POST /nodes/{NODES[1]}/start")
        check(wait_port(NODES[1], PORT, 5), f"{NODES[1]}:{PORT} answers again")
        errors = 0
        for i in range(90):
            try:
                session.execute(insert, (i, "after"))
            except Exception:  # noqa: BLE001 - counted
                errors += 1
        check(errors == 0, f"after the start, every write succeeds ({errors} errors)")
        rows = {r.id: r.v for r in session.execute("SELECT id, v FROM fa.t")}
        check(len(rows) == 90 and set(rows.values()) == {"after"}, "a scan sees every partition again")

        check(admin("POST", "/nodes/127.18.2.9/stop")[0] == 404, "an unknown node is a 404")
        check(admin("GET", "/nope")[0] == 404, "an unknown path is a 404")
    finally:
        if cluster:
            cluster.shutdown()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if check.failures:
        print(open(log.name).read()[-3000:])
    os.unlink(log.name)
    print(check.summary())
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
