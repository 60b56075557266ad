"""Shared pieces of the zdm-data tests: stand-in clusters (zdm-testcluster, 3 nodes each, on the
test's own 127.24.x.x addresses), python-driver sessions that read each cluster directly, a
simulated dual writer (the proxy's contract: the same statement with the same write timestamp on
both clusters), zdm-data runs, and the fault admin.

Run the tests with /usr/bin/python3 (the interpreter that has python3-cassandra).
"""
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "drivers"))
from harness import Checks, wait_port  # noqa: E402,F401

logging.basicConfig(level=logging.CRITICAL)
warnings.filterwarnings("ignore", category=DeprecationWarning)

from cassandra.auth import PlainTextAuthProvider  # noqa: E402
from cassandra.cluster import Cluster  # noqa: E402
from cassandra.policies import RoundRobinPolicy  # noqa: E402

BUILD = os.environ.get("ZDM_BUILD_DIR", os.path.join(ROOT, "build"))
TESTCLUSTER = os.path.join(BUILD, "testcluster", "zdm-testcluster")
ZDM_DATA = os.path.join(BUILD, "data", "zdm-data")
PORT = 9042


def set_build(build_dir):
    global BUILD, TESTCLUSTER, ZDM_DATA
    BUILD = build_dir
    TESTCLUSTER = os.path.join(BUILD, "testcluster", "zdm-testcluster")
    ZDM_DATA = os.path.join(BUILD, "data", "zdm-data")


class StandIn:
    """One zdm-testcluster process: `nodes` addresses, a fault admin on admin_port."""

    def __init__(self, name, nodes, admin_port, workdir, extra=()):
        self.name, self.nodes, self.admin = name, nodes, f"{nodes[0]}:{admin_port}"
        self.log = os.path.join(workdir, f"{name}.log")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [TESTCLUSTER, "--cluster-name", name, "--nodes", ",".join(nodes), "--port", str(PORT),
                 "--prepared-per-node", "--admin", self.admin, *extra],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        for ip in nodes:
            if not wait_port(ip, PORT):
                raise SystemExit(f"{name}: zdm-testcluster did not listen on {ip}:{PORT} (see {self.log})")

    def faults(self, body, node=None):
        path = f"/nodes/{node}/faults" if node else "/faults"
        return self._admin("POST", path, body)

    def clear_faults(self):
        return self._admin("DELETE", "/faults")

    def _admin(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://{self.admin}{path}", data=data, method=method)
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read().decode() or "null")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def connect(nodes, **kw):
    """A python-driver session on one cluster, read and written directly."""
    cluster = Cluster(contact_points=nodes, port=PORT, load_balancing_policy=RoundRobinPolicy(),
                      **kw)
    return cluster, cluster.connect()


def run_data(*args, timeout=180, env=None):
    """Runs zdm-data to completion; returns (exit code, stdout, stderr)."""
    r = subprocess.run([ZDM_DATA, *args], capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, **(env or {})))
    return r.returncode, r.stdout, r.stderr


def start_data(*args, log=None):
    """Starts zdm-data in the background (its own process group); output to `log`."""
    out = open(log, "w") if log else subprocess.DEVNULL
    return subprocess.Popen([ZDM_DATA, *args], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def cluster_args(origin_nodes, target_nodes):
    return ["--origin", ",".join(origin_nodes), "--target", ",".join(target_nodes)]


class DualWriter(threading.Thread):
    """What the proxy does during a backfill: each write goes to both clusters with one write
    timestamp (the proxy sets it when the client does not). Updates and deletes rows the
    historical load wrote, and inserts new ones, until stop()."""

    def __init__(self, origin, target, statements, rate=300, seed=7):
        super().__init__(daemon=True)
        self.sessions = (origin, target)
        # [(weight, cql, args_fn(random, timestamp) -> bind values, name)]
        self.statements = statements
        self.rate, self.random = rate, random.Random(seed)
        self.stop_flag = threading.Event()
        self.counts, self.errors = {}, []
        self.last_ts = 0
        self.prepared = [(w, [s.prepare(q) for s in self.sessions], fn, name)
                         for w, q, fn, name in statements]

    def timestamp(self):
        ts = max(int(time.time() * 1e6), self.last_ts + 1)
        self.last_ts = ts
        return ts

    def run(self):
        total = sum(w for w, *_ in self.prepared)
        interval = 1.0 / self.rate
        while not self.stop_flag.is_set():
            pick = self.random.uniform(0, total)
            for w, stmts, fn, name in self.prepared:
                pick -= w
                if pick <= 0:
                    break
            args = list(fn(self.random, self.timestamp()))
            try:
                for s, st in zip(self.sessions, stmts):
                    s.execute(st, args)
                self.counts[name] = self.counts.get(name, 0) + 1
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append(f"{name}: {type(e).__name__}: {e}")
            time.sleep(interval)

    def stop(self):
        self.stop_flag.set()
        self.join(timeout=10)


def read_all(session, table, columns):
    """{primary key tuple: row} of a whole table, read directly."""
    return list(session.execute(f"SELECT {columns} FROM {table}"))


def cleanup_dir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def stop_group(proc, sig=signal.SIGTERM):
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def auth(user, password):
    return PlainTextAuthProvider(user, password)
